// koppel dashboard: the retry, skip and preview buttons. Everything else is server-rendered.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="koppel-csrf"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var base = document.querySelector('meta[name="koppel-base"]');
  var root = base ? base.getAttribute("content") : ".";
  var api = root + "/api/retry";

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Koppel-CSRF": csrf },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, body: data }; });
    });
  }

  // Skip one failed record: asks why (kept in the activity log), then takes it off the
  // retry list.
  function skip(button) {
    var status = button.parentNode.querySelector(".skip-result");
    var reason = window.prompt("Why skip record " + button.dataset.record +
                               "? (kept in the activity log)");
    if (reason === null) { return; }
    button.disabled = true;
    status.textContent = "Skipping…";
    post(root + "/api/skip", { tenant: button.dataset.tenant, flow: button.dataset.flow,
                               records: [button.dataset.record], reason: reason })
      .then(function (result) {
        if (result.ok) {
          status.textContent = "Skipped: " + result.body.reason;
        } else {
          var detail = result.body.detail;
          status.textContent = "Not skipped: " +
            (typeof detail === "string" ? detail : JSON.stringify(detail));
          button.disabled = false;
        }
      }).catch(function (error) {
        status.textContent = "Not skipped: " + error;
        button.disabled = false;
      });
  }

  // Preview one record: a dry run of it (nothing is written), then what its load step
  // would have sent, polled until the run has reached it.
  function preview(button) {
    var cell = button.parentNode;
    var status = cell.querySelector(".preview-result");
    var out = cell.querySelector(".preview-payload");
    var query = "?tenant=" + encodeURIComponent(button.dataset.tenant) +
      "&flow=" + encodeURIComponent(button.dataset.flow) +
      "&record=" + encodeURIComponent(button.dataset.record);
    button.disabled = true;
    status.textContent = "Dry run…";
    post(root + "/api/preview", { tenant: button.dataset.tenant, flow: button.dataset.flow,
                                  record: button.dataset.record })
      .then(function (result) {
        if (!result.ok) {
          status.textContent = "No preview: " + (result.body.detail || ("HTTP " + result.body.status_code));
          button.disabled = false;
          return;
        }
        var runId = result.body.dag_run_id;
        var tries = 0;
        (function poll() {
          fetch(root + "/api/preview" + query, { credentials: "same-origin" })
            .then(function (response) {
              return response.json().then(function (body) { return { ok: response.ok, body: body }; });
            }).then(function (got) {
              if (got.ok && got.body.run_id === runId) {
                status.textContent = "Would " + got.body.operation + " " + got.body.target_type +
                  " (dry run " + runId + "):";
                out.textContent = JSON.stringify(got.body.payload, null, 2);
                out.hidden = false;
                button.disabled = false;
              } else if (++tries < 60) {
                setTimeout(poll, 3000);
              } else {
                status.textContent = "No preview from run " + runId + " yet: see its log.";
                button.disabled = false;
              }
            });
        })();
      }).catch(function (error) {
        status.textContent = "No preview: " + error;
        button.disabled = false;
      });
  }

  function retry(button) {
    var status = button.parentNode.querySelector(".retry-result");
    button.disabled = true;
    status.textContent = "Triggering…";
    fetch(api, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Koppel-CSRF": csrf },
      body: JSON.stringify({ tenant: button.dataset.tenant, flow: button.dataset.flow })
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      var body = result.body;
      if (result.ok) {
        status.textContent = "Run " + body.dag_run_id + " " + (body.state || "queued") +
          " for " + body.records.length + " record(s)" +
          (body.is_paused ? " — the DAG is paused: unpause it to run." : ".");
      } else {
        status.textContent = "Not triggered: " + (body.detail || ("HTTP " + body.status_code));
        button.disabled = false;
      }
    }).catch(function (error) {
      status.textContent = "Not triggered: " + error;
      button.disabled = false;
    });
  }

  // Links to Airflow pages. In the UI's plugin iframe (sandboxed without
  // allow-top-navigation) a target="_top" link cannot navigate the UI, so route the UI's
  // own single-page router instead: push the URL on the top window's history and tell it.
  function openInAirflow(event, link) {
    if (window.top === window) { return; }
    try {
      var top = window.top;
      var url = new URL(link.href, document.baseURI);
      if (url.origin !== top.location.origin) { return; }
      var current = top.history.state || {};
      var state = { usr: null, key: Math.random().toString(36).slice(2, 10),
                    idx: (typeof current.idx === "number" ? current.idx : 0) + 1 };
      top.history.pushState(state, "", url.pathname + url.search + url.hash);
      top.dispatchEvent(new PopStateEvent("popstate", { state: state }));
      event.preventDefault();
    } catch (error) {
      // Not same-origin after all: leave the browser's default behaviour.
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.retry");
    if (button) { retry(button); return; }
    var skipButton = event.target.closest("button.skip");
    if (skipButton) { skip(skipButton); return; }
    var previewButton = event.target.closest("button.preview");
    if (previewButton) { preview(previewButton); return; }
    var link = event.target.closest('a[target="_top"]');
    if (link) { openInAirflow(event, link); }
  });
})();
