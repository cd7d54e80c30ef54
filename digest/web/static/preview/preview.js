// digest preview: view toggles, the checks panel, and live reload over Server-Sent Events.
// The view state lives in the URL fragment so a full page reload (or a shared link) keeps it.
// On a change the email's new HTML is fetched and put in place of the frame's document (no navigation: no
// blank frame, the scroll position stays, and the text shows as soon as it arrives); the checks and the desk
// are fetched after it, so their work never delays the email.
(function () {
  "use strict";

  var viewer = document.getElementById("viewer");
  if (!viewer) { return; }
  var base = viewer.getAttribute("data-base");
  var subscriber = viewer.getAttribute("data-subscriber") || "";
  var frame = document.getElementById("frame");
  var wrap = document.getElementById("frame-wrap");
  var panel = document.getElementById("panel");
  var live = document.getElementById("live");
  var darkButton = document.getElementById("dark");
  var VIEWS = ["html", "text", "source", "headers", "web", "archive"];
  var WIDTHS = ["640", "375"];
  // Views whose frame holds an HTML document that can be swapped in place; text and source are plain text.
  var SWAPPABLE = ["html", "web", "archive", "headers"];
  var swapInPlace = viewer.getAttribute("data-swap") === "1";

  var state = { view: "html", width: "640", dark: false, version: Number(viewer.getAttribute("data-version")) || 0 };
  var fromHash = new URLSearchParams(location.hash.slice(1));
  if (VIEWS.indexOf(fromHash.get("view")) >= 0) { state.view = fromHash.get("view"); }
  if (WIDTHS.indexOf(fromHash.get("width")) >= 0) { state.width = fromHash.get("width"); }
  state.dark = fromHash.get("dark") === "1";
  // A subject under test (`digest editions subject-test`): the frame shows the email with it (?subject=N).
  var subjectPick = document.getElementById("subject-under-test");
  state.subject = "";
  if (subjectPick) {
    var wanted = fromHash.get("subject") || "";
    if (Array.prototype.some.call(subjectPick.options, function (o) { return o.value === wanted; })) {
      state.subject = wanted;
      subjectPick.value = wanted;
    }
  }

  function query(extra) {
    var params = new URLSearchParams();
    if (subscriber) { params.set("subscriber", subscriber); }
    Object.keys(extra || {}).forEach(function (key) { params.set(key, extra[key]); });
    var text = params.toString();
    return text ? "?" + text : "";
  }

  // ``live``: the fetch answers a change event, so the preview may hand over the render it made ahead for
  // that change; a page that just opened asks for a fresh one (a change may be on its way to it).
  function frameUrl(live) {
    var extra = { v: String(state.version) };  // a new URL per change, so no cache can serve the old email
    if (live) { extra.live = "1"; }
    if ((state.view === "html" || state.view === "web") && state.dark) { extra.dark = "1"; }
    if (state.subject) { extra.subject = state.subject; }
    return base + "/" + state.view + query(extra);
  }

  function press(selector, attr, value) {
    document.querySelectorAll(selector).forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute(attr) === value));
    });
  }

  function apply() {
    press("button[data-view]", "data-view", state.view);
    press("button[data-width]", "data-width", state.width);
    darkButton.setAttribute("aria-pressed", String(state.dark));
    wrap.setAttribute("data-width", state.width);
    wrap.classList.toggle("dark", state.dark);
    var hash = new URLSearchParams({ view: state.view, width: state.width, dark: state.dark ? "1" : "0" });
    if (state.subject) { hash.set("subject", state.subject); }
    document.querySelectorAll("#subjects-above li").forEach(function (item) {
      if (item.getAttribute("data-subject") === state.subject) { item.setAttribute("aria-current", "true"); }
      else { item.removeAttribute("aria-current"); }
    });
    history.replaceState(null, "", "#" + hash.toString());
    loadFrame(false);
  }

  var keepScroll = null;
  var swaps = 0;
  function loadFrame(keepPosition) {
    swaps += 1;  // a swap still on its way would put the previous view back
    keepScroll = null;
    if (keepPosition) {
      try { keepScroll = frame.contentWindow.scrollY; } catch (e) { keepScroll = null; }
    }
    var url = frameUrl(keepPosition);
    if (keepPosition || frame.getAttribute("src") !== url) { frame.setAttribute("src", url); }
  }

  function fitFrame() {
    try {
      var doc = frame.contentDocument;
      // Tall enough to show the whole email without a second scrollbar.
      frame.style.height = Math.max(600, doc.documentElement.scrollHeight + 20) + "px";
    } catch (e) { /* another origin: keep the default height */ }
  }

  frame.addEventListener("load", function () {
    fitFrame();
    try {
      if (keepScroll !== null) { frame.contentWindow.scrollTo(0, keepScroll); }
    } catch (e) { /* another origin */ }
  });

  // Replaces the frame's document with a fresh fetch of the same view. The document object stays, and with
  // it the frame's sandbox and the email's Content-Security-Policy (no script runs, as before); DOMParser
  // never runs scripts either. Resolves "swapped", "navigate" (the frame must load the view itself) or
  // "superseded" (a newer change or another view took over; that one loads the checks).
  function swapFrame() {
    var doc = null;
    try { doc = frame.contentDocument; } catch (e) { doc = null; }
    // Only over a loaded view of this edition: not the frame's first about:blank, nor a page still loading.
    if (!swapInPlace || SWAPPABLE.indexOf(state.view) < 0 || !doc || !doc.documentElement
        || doc.contentType !== "text/html" || doc.readyState !== "complete"
        || doc.location.pathname.indexOf(base + "/") !== 0) {
      return Promise.resolve("navigate");
    }
    var mine = ++swaps;
    var url = frameUrl(true);
    return fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        var type = response.headers.get("content-type") || "";
        if (type.indexOf("text/html") !== 0) { return "navigate"; }
        return response.text().then(function (html) {
          if (mine !== swaps) { return "superseded"; }
          var current = frame.contentDocument;
          // The frame's own DOMParser: a document parsed here would take this page's Content-Security-Policy,
          // which refuses inline styles, and the email's (inlined) styles would be lost on the way in.
          var parsed = new frame.contentWindow.DOMParser().parseFromString(html, "text/html");
          var y = frame.contentWindow.scrollY;
          current.replaceChild(current.adoptNode(parsed.documentElement), current.documentElement);
          frame.contentWindow.scrollTo(0, y);
          fitFrame();
          return "swapped";
        });
      })
      .catch(function () { return mine === swaps ? "navigate" : "superseded"; });
  }

  function loadPanel(live) {
    var url = panel.getAttribute("data-src");
    var separator = url.indexOf("?") >= 0 ? "&" : "?";
    url += separator + "v=" + state.version + (live ? "&live=1" : "");
    fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        // The panel is rendered by the preview's own autoescaped template; nothing from it runs as script.
        panel.innerHTML = html;
      })
      .catch(function (error) { panel.textContent = "Could not load the checks: " + error; });
  }

  document.querySelectorAll("button[data-view]").forEach(function (button) {
    button.addEventListener("click", function () { state.view = button.getAttribute("data-view"); apply(); });
  });
  document.querySelectorAll("button[data-width]").forEach(function (button) {
    button.addEventListener("click", function () { state.width = button.getAttribute("data-width"); apply(); });
  });
  darkButton.addEventListener("click", function () { state.dark = !state.dark; apply(); });
  if (subjectPick) {
    subjectPick.addEventListener("change", function () { state.subject = subjectPick.value; apply(); });
  }
  // "View as" and "Send test" load a new page: carry the view along in the fragment of the form's action (a
  // redirect without a fragment of its own keeps the request's), so mobile or dark mode stays on.
  function keepView(form) { form.action = form.action.split("#")[0] + location.hash; }
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function () { keepView(form); });
  });
  // The editor's desk: its forms post and come back to this page; live reload refreshes it in place (a change
  // made in another tab or with `digest editions ...`).
  var desk = document.getElementById("desk-wrap");
  // Typing in the desk (the note, a reason) is never thrown away by a refresh; the next change refreshes it.
  function deskBeingEdited() {
    return Array.prototype.some.call(desk.querySelectorAll("textarea, input[type='text'], input:not([type])"),
      function (field) { return field.value !== field.defaultValue || field === document.activeElement; });
  }
  function loadDesk() {
    if (!desk || deskBeingEdited()) { return; }
    var url = desk.getAttribute("data-src");
    var separator = url.indexOf("?") >= 0 ? "&" : "?";
    fetch(url + separator + "v=" + state.version, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        if (deskBeingEdited()) { return; }
        // Rendered by the preview's own autoescaped template, like the panel.
        desk.innerHTML = html;
        desk.querySelectorAll("form").forEach(function (form) {
          form.addEventListener("submit", function () { keepView(form); });
        });
        desk.setAttribute("data-version", String(state.version));
      })
      .catch(function () { /* keep the desk as it is; the next change tries again */ });
  }
  var picker = document.getElementById("subscriber");
  if (picker) {
    picker.addEventListener("change", function () { keepView(picker.form); picker.form.submit(); });
  }

  function setLive(status, text) {
    live.setAttribute("data-state", status);
    live.textContent = text;
  }

  var reloads = 0;
  // ``keepDesk``: leave the desk's forms alone (a note being typed right after the page opened).
  function reload(reason, keepDesk) {
    reloads += 1;
    viewer.setAttribute("data-reloads", String(reloads));
    setLive("live", "live · reloaded (" + reason + ")");
    if (!swapInPlace) {
      loadFrame(true);
      loadPanel(true);
      if (!keepDesk) { loadDesk(); }
      return;
    }
    var mine = reloads;
    swapFrame().then(function (outcome) {
      if (outcome === "superseded" && mine !== reloads) { return; }  // the newer change loads the checks
      if (outcome === "navigate") { loadFrame(true); }
      loadPanel(true);
      if (!keepDesk) { loadDesk(); }
    });
  }

  if (window.EventSource) {
    var connectedBefore = false;
    var events = new EventSource("/events");
    events.addEventListener("hello", function (event) {
      var version = JSON.parse(event.data).version;
      // A second hello means the connection dropped: the preview may have restarted, so refresh to be sure.
      // A first one with another version than the page's: a change came between the page and its stream
      // (often the very desk action that opened this page, which the desk already shows).
      if (connectedBefore) { state.version = version; reload("reconnected"); }
      else if (version !== state.version) { state.version = version; reload("missed", true); }
      connectedBefore = true;
      setLive("live", "live");
    });
    events.addEventListener("change", function (event) {
      var data = JSON.parse(event.data);
      state.version = data.version;
      reload(data.reason);
    });
    events.addEventListener("error", function () { setLive("down", "reconnecting…"); });
  } else {
    setLive("down", "no live reload in this browser");
  }

  apply();
  loadPanel();
})();
