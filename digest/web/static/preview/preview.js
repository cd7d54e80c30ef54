// digest preview: view toggles, the checks panel, and live reload over Server-Sent Events.
// The view state lives in the URL fragment so a full page reload (or a shared link) keeps it.
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

  function frameUrl() {
    var extra = { v: String(state.version) };  // a new URL per change, so no cache can serve the old email
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
  function loadFrame(keepPosition) {
    keepScroll = null;
    if (keepPosition) {
      try { keepScroll = frame.contentWindow.scrollY; } catch (e) { keepScroll = null; }
    }
    var url = frameUrl();
    if (keepPosition || frame.getAttribute("src") !== url) { frame.setAttribute("src", url); }
  }

  frame.addEventListener("load", function () {
    try {
      var doc = frame.contentDocument;
      // Tall enough to show the whole email without a second scrollbar.
      frame.style.height = Math.max(600, doc.documentElement.scrollHeight + 20) + "px";
      if (keepScroll !== null) { frame.contentWindow.scrollTo(0, keepScroll); }
    } catch (e) { /* another origin: keep the default height */ }
  });

  function loadPanel() {
    var url = panel.getAttribute("data-src");
    var separator = url.indexOf("?") >= 0 ? "&" : "?";
    fetch(url + separator + "v=" + state.version, { cache: "no-store", credentials: "same-origin" })
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
  function loadDesk() {
    if (!desk) { return; }
    var url = desk.getAttribute("data-src");
    var separator = url.indexOf("?") >= 0 ? "&" : "?";
    fetch(url + separator + "v=" + state.version, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
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
  function reload(reason) {
    reloads += 1;
    viewer.setAttribute("data-reloads", String(reloads));
    loadFrame(true);
    loadPanel();
    loadDesk();
    setLive("live", "live · reloaded (" + reason + ")");
  }

  if (window.EventSource) {
    var connectedBefore = false;
    var events = new EventSource("/events");
    events.addEventListener("hello", function (event) {
      var version = JSON.parse(event.data).version;
      // A second hello means the connection dropped: the preview may have restarted, so refresh to be sure.
      if (connectedBefore) { state.version = version; reload("reconnected"); }
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
