// The chat editor (templates/curation/core/_chat_editor.html): add, remove and re-role turns;
// tool calls as cards, their arguments checked against the function's schema as they are typed
// (the server answers with an escaped message); reasoning, "train on this turn" and tool results.
// Each turn's hidden fields (tool_calls, weight) are rewritten only when that turn is edited, so
// an untouched turn is sent back exactly as it was rendered.
window.shikomiEditor = (() => {
  const turns = document.getElementById("turns");
  if (!turns) return null;
  const root = document.getElementById("chat-editor") || turns.parentElement;
  const form = turns.closest("form");
  const checkUrl = root.dataset.checkUrl;
  const changed = () => form && form.dispatchEvent(new Event("change", { bubbles: true }));
  const timers = new WeakMap();
  let serial = 0;

  function refresh(turn) {
    const role = turn.querySelector("select[name=role]").value;
    turn.className = `turn ${role}`;
    // The turn's class shows its role's parts (shikomi.css); parts that hold something stay
    // shown under another role, so the checks' refusal of them can be read and acted on.
    const reasoning = turn.querySelector("textarea[name=reasoning]");
    turn.querySelector(".for-assistant").classList.toggle("keep", !!turn.querySelector(".call") || !!reasoning.value.trim());
    turn.querySelector(".for-tool").classList.toggle("keep", !!turn.querySelector("input[name=tool_call_id]").value);
    const rating = turn.querySelector("select[name=turn_rating]");
    if (rating && role !== "assistant") rating.value = "";
  }

  function describe(card) {
    serial += 1;
    const slot = card.querySelector(".call-error");
    slot.id = `call-error-${serial}`;
    card.querySelector(".call-arguments").setAttribute("aria-describedby", slot.id);
  }

  function callOf(card) {
    let call = null;
    try { call = JSON.parse(card.dataset.call || "null"); } catch (err) { call = null; }
    if (!call || typeof call !== "object" || Array.isArray(call)) call = { id: "", type: "function", function: {} };
    const fn = call.function && typeof call.function === "object" && !Array.isArray(call.function) ? call.function : {};
    call.id = card.querySelector(".call-id").value;
    fn.name = card.querySelector(".call-function").value;
    fn.arguments = card.querySelector(".call-arguments").value;
    call.function = fn;
    return call;
  }

  function syncCalls(turn) {
    const calls = [...turn.querySelectorAll(".call")].map(callOf);
    turn.querySelector("input[name=tool_calls]").value = calls.length ? JSON.stringify(calls) : "";
    listIds();
  }

  // The call ids a tool result may answer, offered as it is typed.
  function listIds() {
    const list = document.getElementById("call-ids");
    if (!list) return;
    list.replaceChildren(...[...turns.querySelectorAll(".call-id")].filter((i) => i.value).map((i) => {
      const option = document.createElement("option");
      option.value = i.value;
      return option;
    }));
  }

  function show(card, html) {
    const slot = card.querySelector(".call-error");
    slot.innerHTML = html; // the server's message, already escaped
    card.querySelector(".call-arguments").setAttribute("aria-invalid", slot.textContent.trim() ? "true" : "false");
  }

  async function check(card) {
    if (!checkUrl) return;
    const body = new FormData();
    body.append("function", card.querySelector(".call-function").value);
    body.append("arguments", card.querySelector(".call-arguments").value);
    const sent = `${body.get("function")}\n${body.get("arguments")}`;
    card.dataset.checking = sent;
    const token = document.querySelector("input[name=csrfmiddlewaretoken]");
    try {
      const response = await fetch(checkUrl, { method: "POST", body, headers: { "X-CSRFToken": token ? token.value : "" } });
      if (!response.ok || card.dataset.checking !== sent) return; // a newer check is on its way
      show(card, await response.text());
    } catch (err) {
      // Offline: saving checks the arguments again.
    }
  }

  function scheduleCheck(card) {
    clearTimeout(timers.get(card));
    timers.set(card, setTimeout(() => check(card), 300));
  }

  function freeId() {
    const used = new Set([...turns.querySelectorAll(".call-id")].map((i) => i.value));
    let n = 0;
    while (used.has(`call_${n}`)) n += 1;
    return `call_${n}`;
  }

  function addCall(turn, call) {
    const card = document.getElementById("call-template").content.firstElementChild.cloneNode(true);
    turn.querySelector(".calls").appendChild(card);
    describe(card);
    const fn = (call && call.function) || {};
    if (call) card.dataset.call = JSON.stringify(call);
    card.querySelector(".call-id").value = call ? call.id || "" : freeId();
    const select = card.querySelector(".call-function");
    if (fn.name !== undefined) {
      if (select.tagName === "SELECT" && ![...select.options].some((o) => o.value === fn.name)) {
        select.add(new Option(fn.name, fn.name));
      }
      select.value = fn.name;
    }
    card.querySelector(".call-arguments").value = typeof fn.arguments === "string" ? fn.arguments : "{}";
    return card;
  }

  function addTurn() {
    const node = document.getElementById("turn-template").content.firstElementChild.cloneNode(true);
    turns.appendChild(node);
    return node;
  }

  // Another page's script sets a whole message into a turn (role, text, reasoning, calls...).
  function fill(turn, message) {
    turn.querySelector("select[name=role]").value = message.role;
    turn.querySelector("textarea[name=content]").value = message.content || "";
    turn.querySelector("textarea[name=reasoning]").value = message.reasoning || "";
    turn.querySelector("input[name=tool_call_id]").value = message.tool_call_id || "";
    const weight = turn.querySelector("input[name=weight]");
    weight.value = message.weight === undefined ? "" : String(message.weight);
    weight.dataset.on = message.weight === 1 ? "1" : "";
    turn.querySelector(".train-turn").checked = message.weight !== 0;
    turn.querySelector(".calls").replaceChildren();
    (Array.isArray(message.tool_calls) ? message.tool_calls : []).forEach((call) => addCall(turn, call));
    const extra = Object.fromEntries(Object.entries(message).filter(([key]) =>
      !["role", "content", "reasoning", "weight", "tool_calls", "tool_call_id"].includes(key)));
    turn.querySelector("input[name=extra]").value = Object.keys(extra).length ? JSON.stringify(extra) : "";
    syncCalls(turn);
    refresh(turn);
  }

  turns.querySelectorAll(".call").forEach(describe);

  document.getElementById("add-turn").addEventListener("click", () => {
    const roles = turns.querySelectorAll(".turn select[name=role]");
    const node = addTurn();
    const previous = roles.length ? roles[roles.length - 1].value : "assistant";
    node.querySelector("select[name=role]").value = previous === "user" ? "assistant" : "user";
    refresh(node);
    node.querySelector("textarea").focus();
    changed();
  });

  turns.addEventListener("click", (e) => {
    const button = e.target.closest("button");
    if (!button) return;
    const turn = button.closest(".turn");
    if (button.classList.contains("remove-turn")) {
      turn.remove();
      listIds();
    } else if (button.classList.contains("add-call")) {
      const card = addCall(turn, null);
      syncCalls(turn);
      card.querySelector(".call-function").focus();
      check(card);
    } else if (button.classList.contains("remove-call")) {
      button.closest(".call").remove();
      syncCalls(turn);
      refresh(turn);
      turn.querySelector(".add-call").focus();
    } else {
      return;
    }
    changed();
  });

  turns.addEventListener("input", (e) => {
    const card = e.target.closest(".call");
    if (!card) return;
    syncCalls(card.closest(".turn"));
    if (e.target.classList.contains("call-arguments")) scheduleCheck(card);
  });

  turns.addEventListener("change", (e) => {
    const turn = e.target.closest(".turn");
    if (e.target.name === "role") refresh(turn);
    if (e.target.classList.contains("call-function")) {
      syncCalls(turn);
      check(e.target.closest(".call"));
    }
    if (e.target.classList.contains("train-turn")) {
      const weight = turn.querySelector("input[name=weight]");
      weight.value = e.target.checked ? weight.dataset.on || "" : "0";
    }
  });

  // Enter on the editor's buttons and toggles acts on them, not on the page's shortcuts.
  root.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.ctrlKey && !e.metaKey && e.target.matches("button, summary")) e.stopPropagation();
  });

  // After a refused save, the field the message names is marked and focused.
  const refused = document.querySelector("[data-error-field]");
  const path = refused && /^messages\[(\d+)\](.*)$/.exec(refused.dataset.errorField);
  if (path) {
    const turn = turns.children[Number(path[1])];
    const call = /^\.tool_calls\[(\d+)\](.*)$/.exec(path[2]);
    let field = null;
    if (turn && call) {
      const card = turn.querySelectorAll(".call")[Number(call[1])];
      const part = { ".id": ".call-id", ".function.name": ".call-function" }[call[2]] || ".call-arguments";
      field = card && card.querySelector(part);
      if (card && part === ".call-arguments" && !card.querySelector(".call-error").textContent.trim()) {
        card.querySelector(".call-error").textContent = refused.dataset.errorMessage || "";
      }
    } else if (turn) {
      const name = path[2].slice(1).split(".")[0] || "content";
      field = turn.querySelector(`[name="${CSS.escape(name)}"]`) || turn.querySelector("textarea[name=content]");
      if (name === "reasoning") turn.querySelector("details.reasoning").open = true;
    }
    if (field && field.type !== "hidden") {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    }
  }

  return { turns, addTurn, fill };
})();
