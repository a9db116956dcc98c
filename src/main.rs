//! `cockpit`: the Chat Cockpit service and its tools (see [`cockpit::cli`]).

fn main() -> std::process::ExitCode {
    cockpit::cli::main()
}
