// The search page: Stop closes the stream (removing the element makes htmx's
// SSE extension close its EventSource; the server then stops reading), and
// the button is disabled once the search is done or stopped.
(function () {
  "use strict";
  const stop = document.getElementById("search-stop");
  const summary = () => document.getElementById("search-summary");
  function finish(text) {
    const sse = document.getElementById("search-sse");
    if (sse) sse.remove();
    stop.disabled = true;
    if (text) summary().textContent = text;
  }
  if (stop) stop.addEventListener("click", () => finish("Stopped."));
  document.body.addEventListener("htmx:sseClose", () => { stop.disabled = true; });
})();
