/* The live log page: controls around htmx's SSE extension (htmx 2, ext/sse).
 *
 * htmx owns the connection and the swaps (sse-connect on #log-sse, sse-swap
 * appending fragments to #log-lines). This script adds what htmx does not:
 *  - filters (level, text, regex, exclude): an invalid regex is checked
 *    with the stream's own 400 before connecting, its message shown;
 *  - a permalink (?at=<cursor>): the stream opens with the lines around
 *    that line; the page marks it (.target), scrolls to it and stops
 *    following so it stays in view (new lines still arrive below);
 *  - one connection per page: filters rebuild #log-sse (closing the old
 *    EventSource first) so the new stream starts fresh with its backfill;
 *  - pause: fragments are intercepted in htmx:sseBeforeMessage and kept,
 *    in order, until resume (bounded by the page's line limit);
 *  - the DOM keeps only the last data-max-lines lines;
 *  - follow (auto-scroll), clear, and a live / reconnecting / disconnected
 *    indicator driven by htmx:sseOpen / htmx:sseError and readyState;
 *  - exact resume: the browser's own reconnect sends Last-Event-ID; when the
 *    EventSource fails for good (an error status) and htmx makes a new one,
 *    that one carries ?last_event_id= so nothing is lost or shown twice.
 */
(function () {
  "use strict";

  var view = document.getElementById("logview");
  if (!view || !window.htmx) return;

  var streamBase = view.dataset.streamBase;
  var backfill = view.dataset.backfill || "200";
  var maxLines = parseInt(view.dataset.maxLines || "2000", 10);
  var target = view.dataset.at || ""; // a permalink's cursor, until its line is shown

  var lines = document.getElementById("log-lines");
  var output = document.getElementById("log-output");
  var statusEl = document.getElementById("log-status");
  var statusText = statusEl.querySelector(".status-text");
  var levelEl = document.getElementById("log-level");
  var queryEl = document.getElementById("log-q");
  var regexEl = document.getElementById("log-re");
  var excludeEl = document.getElementById("log-exclude");
  var filterError = document.getElementById("log-filter-error");
  var pauseBtn = document.getElementById("log-pause");
  var followEl = document.getElementById("log-follow");
  var clearBtn = document.getElementById("log-clear");
  var countEl = document.getElementById("log-count");
  var lineNodes = lines.getElementsByClassName("line"); // live collection

  var paused = false;
  var pending = []; // [{html, count}] kept while paused, oldest first
  var pendingLines = 0;
  var currentSource = null; // the page's one EventSource
  var lastEventId = ""; // the cursor of the last event this page received
  var resumeFrom = ""; // set when the extension must start a new EventSource

  // Every EventSource the extension creates goes through here, so the page
  // closes the old one itself before opening another (one connection per
  // page), and a replacement for one that failed for good resumes from the
  // last cursor (?last_event_id=) instead of starting over with a backfill.
  var createEventSource = htmx.createEventSource;
  htmx.createEventSource = function (url) {
    if (currentSource && currentSource.readyState !== EventSource.CLOSED) {
      currentSource.close();
    }
    if (resumeFrom) {
      url += (url.indexOf("?") < 0 ? "?" : "&") +
        "last_event_id=" + encodeURIComponent(resumeFrom);
    }
    currentSource = createEventSource(url);
    return currentSource;
  };

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusText.textContent = text || state;
  }

  function countIn(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    return template.content.querySelectorAll(".line:not(.notice):not(.skipped)").length;
  }

  function updateCount() {
    // Notices and "N lines skipped" markers are .line too, but not log lines.
    var n = lineNodes.length - lines.querySelectorAll(".line.notice, .line.skipped").length;
    countEl.textContent = n + (n === 1 ? " line" : " lines");
  }

  function updatePauseButton() {
    pauseBtn.setAttribute("aria-pressed", paused ? "true" : "false");
    pauseBtn.classList.toggle("active", paused);
    if (!paused) {
      pauseBtn.textContent = "Pause";
    } else {
      pauseBtn.textContent = pendingLines
        ? "Resume (" + pendingLines + " new)"
        : "Resume";
    }
    pauseBtn.dataset.pending = String(pendingLines);
  }

  // Drop the oldest lines beyond the limit (and wrappers they leave empty).
  function trim() {
    var excess = lineNodes.length - maxLines;
    while (excess-- > 0) {
      var node = lineNodes[0];
      var parent = node.parentNode;
      node.remove();
      while (parent && parent !== lines && !parent.children.length) {
        var up = parent.parentNode;
        parent.remove();
        parent = up;
      }
    }
  }

  function scrollToEnd() {
    if (followEl.checked) output.scrollTop = output.scrollHeight;
  }

  function showTarget() {
    if (!target) return;
    var line = lines.querySelector('.line[data-cursor="' + CSS.escape(target) + '"]');
    if (!line) return;
    target = "";
    line.classList.add("target");
    followEl.checked = false;
    line.scrollIntoView({ block: "center" });
  }

  function afterInsert() {
    trim();
    updateCount();
    scrollToEnd();
    showTarget();
    var empty = output.querySelector(".log-empty");
    if (empty && lineNodes.length) empty.remove();
  }

  // Lines arriving while paused are kept, oldest first; beyond the page's
  // limit the oldest would be trimmed on resume anyway, so drop them now.
  function keep(html) {
    var count = countIn(html);
    pending.push({ html: html, count: count });
    pendingLines += count;
    while (pending.length > 1 && pendingLines - pending[0].count >= maxLines) {
      pendingLines -= pending.shift().count;
    }
    updatePauseButton();
  }

  function resume() {
    paused = false;
    if (pending.length) {
      lines.insertAdjacentHTML(
        "beforeend",
        pending.map(function (p) { return p.html; }).join(""),
      );
    }
    pending = [];
    pendingLines = 0;
    updatePauseButton();
    afterInsert();
  }

  function clearLines() {
    lines.replaceChildren();
    updateCount();
  }

  // The filters as query parameters (level, q, re, exclude), empty ones left out.
  function filterParams() {
    var params = new URLSearchParams();
    if (levelEl.value) params.set("level", levelEl.value);
    var q = queryEl.value.trim();
    if (q) params.set("q", q);
    if (regexEl.value) params.set("re", regexEl.value);
    if (excludeEl.value) params.set("exclude", excludeEl.value);
    return params;
  }

  function streamUrl() {
    var params = filterParams();
    params.set("backfill", backfill);
    return streamBase + "?" + params.toString();
  }

  // A pattern RE2 refuses: the stream says so with a 400 before any byte,
  // so ask it first (backfill=0, closed at once) and show its message.
  function reconnect() {
    if (!regexEl.value && !excludeEl.value) {
      showFilterError("");
      connectStream();
      return;
    }
    var probe = filterParams();
    probe.set("backfill", "0");
    var controller = new AbortController();
    fetch(streamBase + "?" + probe.toString(), { signal: controller.signal })
      .then(function (response) {
        if (response.status === 400) {
          return response.text().then(function (text) {
            showFilterError(text.trim());
          });
        }
        controller.abort();
        showFilterError("");
        connectStream();
      })
      .catch(function () {});
  }

  function showFilterError(text) {
    filterError.textContent = text;
    filterError.hidden = !text;
  }

  // New filters: a new connection that starts fresh with its backfill.
  function connectStream() {
    var old = document.getElementById("log-sse");
    if (currentSource) currentSource.close();
    currentSource = null;
    if (old) old.remove();
    pending = [];
    pendingLines = 0;
    lastEventId = "";
    resumeFrom = "";
    target = "";
    updatePauseButton();
    clearLines();

    var connect = document.createElement("div");
    connect.id = "log-sse";
    connect.hidden = true;
    connect.setAttribute("hx-ext", "sse");
    connect.setAttribute("sse-connect", streamUrl());
    var swap = document.createElement("div");
    swap.setAttribute("sse-swap", "lines,skipped,notice");
    swap.setAttribute("hx-target", "#log-lines");
    swap.setAttribute("hx-swap", "beforeend");
    connect.appendChild(swap);
    view.insertBefore(connect, output);
    setStatus("connecting");
    htmx.process(connect);

    // Keep the filters in the address bar so the view can be shared.
    var page = new URL(window.location.href);
    page.search = filterParams().toString();
    window.history.replaceState(null, "", page);
  }

  function isCurrent(evt) {
    var connect = document.getElementById("log-sse");
    return connect && (evt.target === connect || connect.contains(evt.target));
  }

  document.body.addEventListener("htmx:sseBeforeMessage", function (evt) {
    if (!isCurrent(evt)) return;
    if (evt.detail.lastEventId) lastEventId = evt.detail.lastEventId;
    if (paused) {
      evt.preventDefault();
      keep(evt.detail.data);
    }
  });

  document.body.addEventListener("htmx:sseMessage", function (evt) {
    if (isCurrent(evt)) afterInsert();
  });

  document.body.addEventListener("htmx:sseOpen", function (evt) {
    if (isCurrent(evt)) setStatus("live");
  });

  document.body.addEventListener("htmx:sseError", function (evt) {
    if (!isCurrent(evt)) return;
    var source = evt.detail && evt.detail.source;
    if (source && source.readyState === EventSource.CONNECTING) {
      // The browser retries by itself and sends Last-Event-ID: exact resume.
      setStatus("reconnecting");
    } else {
      // Closed for good (e.g. an error status): htmx retries with backoff
      // using a new EventSource, which resumes from the last cursor.
      resumeFrom = lastEventId;
      setStatus("disconnected", "disconnected, retrying");
    }
  });

  window.addEventListener("offline", function () {
    setStatus("disconnected", "offline");
  });

  pauseBtn.addEventListener("click", function () {
    if (paused) {
      resume();
    } else {
      paused = true;
      updatePauseButton();
    }
  });

  followEl.addEventListener("change", scrollToEnd);
  clearBtn.addEventListener("click", clearLines);

  var debounce = null;
  [queryEl, regexEl, excludeEl].forEach(function (input) {
    input.addEventListener("input", function () {
      window.clearTimeout(debounce);
      debounce = window.setTimeout(reconnect, 350);
    });
  });
  levelEl.addEventListener("change", reconnect);
  document.getElementById("log-controls").addEventListener("submit", function (evt) {
    evt.preventDefault();
    window.clearTimeout(debounce);
    reconnect();
  });

  // Scrolling up to read stops following; scrolling back to the end resumes
  // it. Only scrolls the user caused count (wheel, touch, keys, scrollbar),
  // not the page's own scrolling to new lines or a resized window.
  var lastUserInput = -Infinity;
  ["wheel", "touchmove", "keydown", "pointerdown"].forEach(function (type) {
    output.addEventListener(type, function () { lastUserInput = performance.now(); },
      { passive: true });
  });
  output.addEventListener("scroll", function () {
    if (performance.now() - lastUserInput > 1000) return;
    var atEnd = output.scrollHeight - output.scrollTop - output.clientHeight < 4;
    if (followEl.checked !== atEnd) followEl.checked = atEnd;
  }, { passive: true });

  updatePauseButton();
  updateCount();
})();
