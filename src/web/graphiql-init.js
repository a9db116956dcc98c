// GraphiQL, served from the binary (no CDN). When this tab is signed in to the screen, the
// token is put in the headers and in the WebSocket's connection_init.
"use strict";
(function () {
  const token = sessionStorage.getItem("cockpit.token");
  const auth = token ? { Authorization: "Bearer " + token } : {};
  const ws = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql/ws";
  const fetcher = GraphiQL.createFetcher({
    url: "/graphql",
    subscriptionUrl: ws,
    wsConnectionParams: auth,
  });
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, {
    fetcher,
    defaultEditorToolsVisibility: true,
    defaultHeaders: JSON.stringify(token ? auth : { Authorization: "Bearer <token>" }, null, 2),
    shouldPersistHeaders: false,
  }));
})();
