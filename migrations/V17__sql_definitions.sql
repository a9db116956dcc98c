-- From here on, functions, views and triggers are code, not history: each has one current
-- definition in a file under sql/, applied after the migrations (src/db/definitions.rs).
-- This table remembers the checksum of each file as last applied, so that a start
-- re-applies only the files whose text changed.
CREATE TABLE cockpit.sql_definitions (
    file text COLLATE "C" PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE cockpit.sql_definitions IS
    'The files under sql/ that define functions, views and triggers, with the md5 of the text last applied. Not tenant data: one row per file.';
