/* Job notices: whatever the page, its one SSE connection may carry "notice" events
   (streams.jobs.notices); show each in the corner until dismissed. */
(function () {
  "use strict";
  function box() {
    var element = document.getElementById("job-notices");
    if (!element) {
      element = document.createElement("div");
      element.id = "job-notices";
      element.className = "job-notices";
      element.setAttribute("aria-live", "polite");
      document.body.appendChild(element);
    }
    return element;
  }
  document.addEventListener("htmx:sseOpen", function (event) {
    var source = event.detail && event.detail.source;
    if (!source || source.streamboardNotices) return;
    source.streamboardNotices = true;
    source.addEventListener("notice", function (message) {
      box().insertAdjacentHTML("beforeend", message.data);
    });
  });
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target instanceof Element && target.classList.contains("job-notice-close")) {
      target.closest(".job-notice").remove();
    }
  });
})();
