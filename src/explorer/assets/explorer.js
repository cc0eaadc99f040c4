/* global document, sessionStorage, fetch, location, graphqlWs, GraphiQL, React, ReactDOM */
/* GraphiQL for this server: every request (introspection included) and the WebSocket carry the key
 * from the field above; subscriptions run over graphql-ws on the same /graphql path. */
(function () {
  "use strict";
  var STORE = "pbx-explorer-key";
  var input = document.getElementById("key");
  var state = document.getElementById("keystate");
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  var wsUrl = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql";
  var wsClient = null;
  input.value = sessionStorage.getItem(STORE) || "";

  function key() {
    return input.value.trim();
  }
  function auth() {
    return key() ? { authorization: "Bearer " + key() } : {};
  }

  function render() {
    if (wsClient) wsClient.dispose();
    wsClient = graphqlWs.createClient({ url: wsUrl, lazy: true, connectionParams: auth });
    var base = GraphiQL.createFetcher({
      url: location.origin + "/graphql",
      wsClient: wsClient,
      fetch: function (url, init) {
        var headers = Object.assign({}, (init && init.headers) || {}, auth());
        return fetch(url, Object.assign({}, init, { headers: headers }));
      },
    });
    // GraphiQL picks the WebSocket only for a named subscription whose parsed document it already
    // holds; any document whose operation is a subscription goes over graphql-ws here.
    var SUBSCRIPTION = /^(\s|#[^\n]*\n)*subscription\b/;
    var fetcher = function (params, options) {
      return SUBSCRIPTION.test(params.query) ? wsClient.iterate(params) : base(params, options);
    };
    state.textContent = key() ? "key in use (kept in this tab only)" : "no key: paste one to read the schema";
    // A new key is a new explorer: the schema is fetched again with it.
    root.render(React.createElement(GraphiQL, { key: key(), fetcher: fetcher, defaultEditorToolsVisibility: true, isHeadersEditorEnabled: false }));
  }

  document.getElementById("keybar").addEventListener("submit", function (event) {
    event.preventDefault();
    if (key()) sessionStorage.setItem(STORE, key());
    else sessionStorage.removeItem(STORE);
    render();
  });
  render();
})();
