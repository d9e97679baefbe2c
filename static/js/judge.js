// Judging page: the keyboard (a, b, t, 1-5, Enter, s, d) and the highlighted differences of two
// nearly identical answers. The differences are worked out here from the two texts on the page,
// so the page the server sends is the same for every judge but for the order of the answers.
(() => {
  const form = document.getElementById("judge-form");
  if (!form) return;

  // --- The rubric: one radio group per criterion and answer; number keys score the outlined one.
  const groups = [...form.querySelectorAll("[data-score]")];
  let current = 0;

  function outline(index) {
    current = Math.max(0, Math.min(index, groups.length - 1));
    groups.forEach((group, i) => group.classList.toggle("current", i === current));
  }

  function focusGroup(index) {
    const group = groups[index];
    if (!group) return;
    outline(index);
    (group.querySelector("input:checked") || group.querySelector("input")).focus();
  }

  function score(key) {
    const group = groups[current];
    if (!group) return;
    const radio = group.querySelector(`input[value="${CSS.escape(key)}"]`);
    if (!radio) return;
    const focused = group.contains(document.activeElement);
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
    // On to the next box: the other answer on the same criterion, then the next criterion.
    if (current + 1 < groups.length) {
      if (focused) focusGroup(current + 1);
      else outline(current + 1);
    } else if (focused) {
      radio.focus();
    }
  }

  groups.forEach((group, i) => {
    group.addEventListener("focusin", () => outline(i));
    group.addEventListener("keydown", (e) => {
      // Up and down go to the same answer's box on the criterion above or below; left and right
      // (the radio group's own keys) change the score.
      if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
      e.preventDefault();
      const next = i + (e.key === "ArrowUp" ? -2 : 2);
      if (next >= 0 && next < groups.length) focusGroup(next);
    });
  });
  outline(0);

  // --- The differences of two nearly identical answers -----------------------------------------
  const diffBar = document.getElementById("judge-diff");
  const toggle = document.getElementById("judge-diff-toggle");
  const STORAGE_KEY = "shikomi-judge-diff";
  const MAX_TOKENS = 4000; // both answers together; past this the texts are not compared
  const NEAR = 0.6; // the share of words two answers must have in common to count as nearly the same
  // Words, and each Chinese or Japanese character alone (those languages write no spaces), as
  // text/diff.py splits them; whitespace is never a token, so it is never highlighted.
  const CJK = "\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}\\p{Script=Bopomofo}\\p{Script=Hangul}\\u3005-\\u3007";
  const TOKEN = new RegExp(`[${CJK}]|(?:(?![${CJK}])[\\p{L}\\p{N}\\p{M}_])+|\\S`, "gu");

  function tokens(text) {
    return [...text.matchAll(TOKEN)].map((m) => ({ text: m[0], start: m.index, end: m.index + m[0].length }));
  }

  // Myers' diff: which tokens of a and of b are common to both, or null when more than maxD
  // tokens would have to change (the answers are not nearly the same).
  function common(a, b, maxD) {
    const n = a.length, m = b.length, off = n + m + 1;
    const v = new Int32Array(2 * (n + m) + 3);
    const rounds = [];
    for (let d = 0; d <= maxD; d++) {
      for (let k = -d; k <= d; k += 2) {
        let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1;
        let y = x - k;
        while (x < n && y < m && a[x] === b[y]) { x++; y++; }
        v[off + k] = x;
        if (x >= n && y >= m) {
          rounds.push(v.slice(off - d, off + d + 1));
          return walkBack(rounds, n, m);
        }
      }
      rounds.push(v.slice(off - d, off + d + 1));
    }
    return null;
  }

  function walkBack(rounds, n, m) {
    const inA = new Uint8Array(n), inB = new Uint8Array(m);
    let x = n, y = m;
    for (let d = rounds.length - 1; d > 0; d--) {
      const before = rounds[d - 1];
      const at = (k) => before[k + d - 1];
      const k = x - y;
      const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
      const prevK = down ? k + 1 : k - 1;
      const prevX = at(prevK);
      const start = down ? prevX : prevX + 1;
      while (x > start) { x--; y--; inA[x] = 1; inB[y] = 1; }
      x = prevX;
      y = prevX - prevK;
    }
    while (x > 0) { x--; y--; inA[x] = 1; inB[y] = 1; }
    return [inA, inB];
  }

  // The text again, with the tokens not in common marked (a run of them, spaces included, is one mark).
  function marked(text, words, kept) {
    const pre = document.createElement("pre");
    pre.className = "review-text judge-diff";
    let at = 0;
    let mark = null;
    words.forEach((word, i) => {
      const gap = text.slice(at, word.start);
      if (kept[i]) {
        pre.append(gap + word.text);
        mark = null;
      } else if (mark && !gap.trim()) {
        mark.append(gap + word.text);
      } else {
        pre.append(gap);
        mark = document.createElement("mark");
        mark.className = "diff";
        mark.textContent = word.text;
        pre.append(mark);
      }
      at = word.end;
    });
    pre.append(text.slice(at));
    pre.normalize();
    return pre;
  }

  function stored() {
    try { return localStorage.getItem(STORAGE_KEY); } catch (err) { return null; }
  }

  function store(value) {
    try { localStorage.setItem(STORAGE_KEY, value); } catch (err) { /* private window: not kept */ }
  }

  const plain = [...form.querySelectorAll("pre[data-answer]")];
  let views = null;
  if (diffBar && toggle && plain.length === 2) {
    const texts = plain.map((pre) => pre.textContent);
    const [wa, wb] = texts.map(tokens);
    const total = wa.length + wb.length;
    const found = total && total <= MAX_TOKENS ? common(wa.map((w) => w.text), wb.map((w) => w.text), Math.floor(total * (1 - NEAR))) : null;
    // Answers that differ only in their spacing have nothing to highlight.
    if (found && (found[0].includes(0) || found[1].includes(0))) {
      views = [marked(texts[0], wa, found[0]), marked(texts[1], wb, found[1])];
      views.forEach((view, i) => plain[i].after(view));
      diffBar.hidden = false;
    }
  }

  function showDiff(on) {
    if (!views) return;
    toggle.checked = on;
    views.forEach((view, i) => { view.hidden = !on; plain[i].hidden = on; });
  }

  if (views) {
    showDiff(stored() !== "off");
    toggle.addEventListener("change", () => { store(toggle.checked ? "on" : "off"); showDiff(toggle.checked); });
  }

  // --- Keys -----------------------------------------------------------------------------------
  const typing = window.shikomi.typing;  // base.js
  const submit = () => form.requestSubmit(form.querySelector("button[type=submit]"));

  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.isComposing) return;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); return; }
    const active = document.activeElement;
    if (typing(active)) {
      if (e.key === "Escape") active.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey) return;
    const choice = form.querySelector(`input[name=choice][data-key="${CSS.escape(e.key)}"]`);
    if (choice) {
      e.preventDefault();
      choice.checked = true;
      choice.dispatchEvent(new Event("change", { bubbles: true }));
      return;
    }
    if ("12345".includes(e.key) && e.key.length === 1) { e.preventDefault(); score(e.key); return; }
    if (e.key === "Enter") {
      // A link, a button or a folded section keeps its own Enter.
      if (active && active.closest("a, button, summary")) return;
      e.preventDefault();
      submit();
      return;
    }
    if (e.key === "s") { e.preventDefault(); document.getElementById("judge-skip").click(); return; }
    if (e.key === "d" && views) {
      e.preventDefault();
      toggle.checked = !toggle.checked;
      toggle.dispatchEvent(new Event("change", { bubbles: true }));
    }
  });
})();
