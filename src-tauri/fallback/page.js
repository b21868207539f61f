// The local page: what the gateway is doing while its own web UI is not reachable. State comes from the
// app's `page_state` command every second; buttons call the app's commands (the same actions as the tray).
const invoke = window.__TAURI__.core.invoke;
const $ = (id) => document.getElementById(id);
let suggestedApplied = false;

function list(element, lines, empty) {
  element.replaceChildren(...(lines.length ? lines : empty ? [empty] : []).map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
}

function render(state) {
  $("status").textContent = state.status;
  list($("notices"), state.notices);
  for (const id of ["running", "paused", "busy", "failed"]) $(id).hidden = true;
  if (state.phase === "running") {
    $("running").hidden = false;
    $("address").textContent = state.address ?? "";
    list($("accounts"), state.accounts, "No accounts yet: log in with Claude.");
  } else if (state.phase === "paused") {
    $("paused").hidden = false;
  } else if (state.phase === "port_busy") {
    $("busy").hidden = false;
    $("busy-port").textContent = String(state.busy_port ?? "");
    if (!suggestedApplied && state.suggested_port) {
      $("port").value = state.suggested_port;
      suggestedApplied = true;
    }
  } else if (state.phase === "failed") {
    $("failed").hidden = false;
  }
}

async function refresh() {
  try {
    render(await invoke("page_state"));
  } catch (e) {
    $("status").textContent = `The app does not answer: ${e}`;
  }
}

$("login").addEventListener("click", () => invoke("log_in"));
$("copy").addEventListener("click", () => invoke("copy_address"));
$("resume").addEventListener("click", () => invoke("resume").then(refresh));
for (const button of document.querySelectorAll(".retry")) {
  button.addEventListener("click", () => invoke("retry").then(refresh));
}
$("port-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const port = Number($("port").value);
  if (Number.isInteger(port) && port > 0 && port < 65536) invoke("use_port", { port }).then(refresh);
});

refresh();
setInterval(refresh, 1000);
