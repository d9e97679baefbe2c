// Loss curves of training runs: train and validation loss against the step, drawn as SVG from
// each run's points JSON (run_points). Every <figure data-loss-chart> holds one hidden
// <span data-points-url data-label data-finished> per run (two on the compare page). On load
// all points are fetched, so the chart is there after a reload; while a run is not finished
// its new points are fetched every 2 s and the chart is redrawn. Everything is built with
// createElementNS / textContent: nothing from the data is ever parsed as HTML.
(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = 2000;
  const COLORS = ["#2563eb", "#ea580c", "#16a34a", "#9333ea"];
  const WIDTH = 640;
  const HEIGHT = 300;
  const MARGIN = { left: 58, right: 16, top: 14, bottom: 42 };

  function svg(name, attrs = {}, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // About `count` round tick values covering [low, high].
  function ticks(low, high, count) {
    if (!(high > low)) return [low];
    const raw = (high - low) / count;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) || raw;
    const values = [];
    for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) values.push(Number(v.toPrecision(12)));
    return values;
  }

  function decimals(values) {
    if (values.length < 2) return 2;
    const step = Math.abs(values[1] - values[0]);
    return Math.min(6, Math.max(0, -Math.floor(Math.log10(step))));
  }

  class Chart {
    constructor(figure) {
      this.figure = figure;
      this.text = figure.dataset;
      this.failed = false;
      this.sources = [...figure.querySelectorAll("[data-points-url]")].map((node, i) => ({
        url: node.dataset.pointsUrl,
        label: node.dataset.label || "",
        finished: node.dataset.finished === "true",
        color: COLORS[i % COLORS.length],
        points: new Map(), // step -> point: a step written again (its validation loss) replaces the old one
        totalSteps: 0,
        lastStep: 0,
      }));
      this.svg = svg("svg", {
        class: "chart loss",
        viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
        role: "img",
        "aria-label": this.text.title || "",
      });
      this.legend = document.createElement("p");
      this.legend.className = "legend";
      figure.append(this.svg, this.legend);
    }

    async start() {
      await Promise.all(this.sources.map((source) => this.fetch(source, 0)));
      this.draw();
      if (this.sources.some((s) => !s.finished)) setTimeout(() => this.poll(), POLL_MS);
    }

    async poll() {
      // From one step before the last one seen: the validation loss of that step may have
      // been written after we read its train loss.
      await Promise.all(
        this.sources.filter((s) => !s.finished).map((s) => this.fetch(s, Math.max(0, s.lastStep - 1))),
      );
      this.draw();
      if (this.sources.some((s) => !s.finished)) setTimeout(() => this.poll(), POLL_MS);
    }

    async fetch(source, after) {
      try {
        const url = new URL(source.url, window.location.href);
        url.searchParams.set("after", String(after));
        const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const data = await response.json();
        if (after > 0 && data.step + 1 < source.lastStep) {
          // Resumed from an earlier checkpoint: the later points were dropped; read them all again.
          source.points.clear();
          source.lastStep = 0;
          return this.fetch(source, 0);
        }
        for (const point of data.points) {
          source.points.set(point.step, point);
          source.lastStep = Math.max(source.lastStep, point.step);
        }
        source.totalSteps = data.total_steps || 0;
        source.finished = Boolean(data.finished);
        this.failed = false;
      } catch (error) {
        this.failed = true;
      }
      return undefined;
    }

    series() {
      const lines = [];
      for (const source of this.sources) {
        const points = [...source.points.values()].sort((p, q) => p.step - q.step);
        const prefix = source.label ? `${source.label} · ` : "";
        lines.push({
          name: prefix + (this.text.trainLabel || "train loss"),
          color: source.color,
          dashed: false,
          values: points.filter((p) => p.train_loss !== null).map((p) => [p.step, p.train_loss]),
        });
        lines.push({
          name: prefix + (this.text.valLabel || "validation loss"),
          color: source.color,
          dashed: true,
          values: points.filter((p) => p.val_loss !== null).map((p) => [p.step, p.val_loss]),
        });
      }
      return lines;
    }

    draw() {
      const lines = this.series();
      const all = lines.flatMap((line) => line.values);
      this.svg.replaceChildren();
      this.legend.replaceChildren();
      if (!all.length) {
        const message = this.failed ? this.text.errorLabel : this.text.emptyLabel;
        this.svg.append(svg("text", { x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle", class: "value" }, message || ""));
        return;
      }
      // Loops, not Math.min(...array): a long run has more points than a call takes arguments.
      let xHigh = 1;
      let yLow = Infinity;
      let yHigh = -Infinity;
      for (const [step, loss] of all) {
        xHigh = Math.max(xHigh, step);
        yLow = Math.min(yLow, loss);
        yHigh = Math.max(yHigh, loss);
      }
      for (const source of this.sources) xHigh = Math.max(xHigh, source.totalSteps);
      const xLow = 0;
      const pad = yHigh > yLow ? (yHigh - yLow) * 0.06 : Math.max(Math.abs(yHigh) * 0.1, 0.1);
      yLow = Math.max(0, yLow - pad);
      yHigh += pad;
      const plotW = WIDTH - MARGIN.left - MARGIN.right;
      const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
      const x = (step) => MARGIN.left + ((step - xLow) / (xHigh - xLow)) * plotW;
      const y = (loss) => MARGIN.top + (1 - (loss - yLow) / (yHigh - yLow)) * plotH;

      // Grid and y axis.
      const yTicks = ticks(yLow, yHigh, 5).filter((v) => v >= yLow && v <= yHigh);
      const yDigits = decimals(yTicks);
      for (const value of yTicks) {
        this.svg.append(
          svg("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(value), y2: y(value), stroke: "#e5e7eb" }),
          svg("text", { x: MARGIN.left - 6, y: y(value) + 4, "text-anchor": "end", class: "value" }, value.toFixed(yDigits)),
        );
      }
      // X axis.
      const bottom = HEIGHT - MARGIN.bottom;
      this.svg.append(svg("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: bottom, y2: bottom, stroke: "#9ca3af" }));
      this.svg.append(svg("line", { x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: bottom, stroke: "#9ca3af" }));
      for (const value of ticks(xLow, xHigh, 6).filter((v) => Number.isInteger(v) && v <= xHigh)) {
        this.svg.append(
          svg("line", { x1: x(value), x2: x(value), y1: bottom, y2: bottom + 4, stroke: "#9ca3af" }),
          svg("text", { x: x(value), y: bottom + 17, "text-anchor": "middle", class: "value" }, String(value)),
        );
      }
      this.svg.append(
        svg("text", { x: MARGIN.left + plotW / 2, y: HEIGHT - 4, "text-anchor": "middle", class: "axis" }, this.text.stepLabel || "step"),
        svg(
          "text",
          { x: 14, y: MARGIN.top + plotH / 2, "text-anchor": "middle", class: "axis", transform: `rotate(-90 14 ${MARGIN.top + plotH / 2})` },
          this.text.lossLabel || "loss",
        ),
      );

      // The curves, then the legend.
      for (const line of lines) {
        if (!line.values.length) continue;
        const group = svg("g");
        const attrs = { fill: "none", stroke: line.color, "stroke-width": 2, "stroke-linejoin": "round" };
        if (line.dashed) attrs["stroke-dasharray"] = "6 4";
        group.append(svg("polyline", { ...attrs, points: line.values.map(([s, l]) => `${x(s).toFixed(1)},${y(l).toFixed(1)}`).join(" ") }));
        if (line.dashed || line.values.length === 1) {
          for (const [step, loss] of line.values) {
            const dot = svg("circle", { cx: x(step).toFixed(1), cy: y(loss).toFixed(1), r: 3, fill: line.color });
            dot.append(svg("title", {}, `${line.name}, ${this.text.stepLabel || "step"} ${step}: ${loss.toFixed(4)}`));
            group.append(dot);
          }
        }
        const title = svg("title", {}, line.name);
        group.prepend(title);
        this.svg.append(group);

        const item = document.createElement("span");
        const swatch = svg("svg", { width: 26, height: 10, "aria-hidden": "true" });
        const sample = { x1: 1, x2: 25, y1: 5, y2: 5, stroke: line.color, "stroke-width": 2 };
        if (line.dashed) sample["stroke-dasharray"] = "6 4";
        swatch.append(svg("line", sample));
        const last = line.values[line.values.length - 1][1];
        item.append(swatch, document.createTextNode(` ${line.name}: ${last.toFixed(4)}`));
        this.legend.append(item);
      }
    }
  }

  for (const figure of document.querySelectorAll("figure[data-loss-chart]")) {
    new Chart(figure).start();
  }
})();

// The launch form shows only the settings of the chosen method: each section or field with
// data-methods="lora qlora dpo" shows for those methods only. A hidden one is disabled too,
// so what it holds is not sent and its bounds cannot stop the form (the server ignores it
// anyway). Without JavaScript everything shows and the server reads the chosen method's.
(() => {
  function showMethod(form) {
    const method = form.querySelector("select[name=method]").value;
    form.querySelectorAll("[data-methods]").forEach((part) => {
      const hidden = !part.dataset.methods.split(" ").includes(method);
      part.hidden = hidden;
      part.querySelectorAll("input, select, textarea").forEach((control) => {
        control.disabled = hidden;
      });
    });
  }

  const form = document.getElementById("run-form");
  if (!form || !form.querySelector("select[name=method]")) return;
  showMethod(form);
  form.addEventListener("change", (event) => {
    if (event.target.matches("select[name=method]")) showMethod(form);
  });
})();
