// Eventual dashboard: what every page shares. Plain JavaScript, no build step, no CDN.
// Everything goes through the service's system commands (docs/wire.md).
"use strict";

const EV = (() => {
  const CONFIG = window.EVENTUAL_CONFIG || {serviceUrl: "", readOnly: false, refreshMs: 2000, paths: {}};

  async function system(name, body) {
    const response = await fetch(`${CONFIG.serviceUrl}/rpc/_system/${name}`, {
      method: "POST", headers: {"content-type": "application/json"},
      body: body === undefined || body === null ? "{}" : JSON.stringify(body),
    });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = {message: text}; }
    if (!response.ok) {
      const error = new Error(`${name}: ${data && data.message ? data.message : `HTTP ${response.status}`}`);
      error.status = response.status; error.data = data;
      throw error;
    }
    return data;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }

  function duration(ms) {
    if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
    const m = s / 60;
    if (m < 60) return `${Math.floor(m)} min ${Math.round(s % 60)} s`;
    const h = m / 60;
    if (h < 48) return `${Math.floor(h)} h ${Math.round(m % 60)} min`;
    return `${Math.floor(h / 24)} d ${Math.round(h % 24)} h`;
  }

  function relative(iso, now = Date.now()) {
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return "";
    const d = (now - t) / 1000;
    const abs = Math.abs(d);
    const say = (n, unit) => { const k = Math.round(n); return `${k} ${unit}${k === 1 ? "" : "s"}`; };
    let text;
    if (abs < 5) return "just now";
    if (abs < 60) text = say(abs, "second");
    else if (abs < 3600) text = say(abs / 60, "minute");
    else if (abs < 86400) text = say(abs / 3600, "hour");
    else if (abs < 86400 * 60) text = say(abs / 86400, "day");
    else return new Date(t).toISOString().slice(0, 10);
    return d >= 0 ? `${text} ago` : `in ${text}`;
  }

  // A <time> showing a relative time, the exact one on hover (title) and for screen readers.
  function time(iso) {
    if (!iso) return el("span", {class: "muted", text: "—"});
    const exact = new Date(Date.parse(iso)).toISOString();
    return el("time", {datetime: exact, title: exact, class: "rel", "data-iso": exact}, relative(exact));
  }

  function refreshTimes(root = document) {
    for (const t of root.querySelectorAll("time.rel")) t.textContent = relative(t.dataset.iso);
  }
  setInterval(() => refreshTimes(), 15000);

  function status(s) { return el("span", {class: `status ${s}`, text: s.replace("_", " ").toLowerCase()}); }

  function executionHref(id) { return CONFIG.paths.timeline + encodeURIComponent(id); }

  function nav(current) {
    const link = (href, text, key) => el("a", {href, "aria-current": current === key ? "page" : null}, text);
    return el("nav", {"aria-label": "Dashboard"},
      el("span", {class: "brand"}, "Eventual"),
      link(CONFIG.paths.executions, "Executions", "executions"),
      link(CONFIG.paths.service, "Service", "service"),
      CONFIG.readOnly ? el("span", {class: "readonly", title: "Started with --read-only: the server refuses signals, starts and emits"}, "read-only") : null);
  }

  // ------------------------------------------------------------- JSON Schema (the subset pydantic writes)

  function resolve(schema, root) {
    let s = schema || {};
    for (let i = 0; s && s.$ref && i < 20; i++) {
      const path = s.$ref.replace(/^#\//, "").split("/");
      let target = root;
      for (const p of path) target = target ? target[p] : undefined;
      const {$ref, ...rest} = s;
      s = {...(target || {}), ...rest};
    }
    if (s && s.allOf && s.allOf.length === 1) { const {allOf, ...rest} = s; s = {...resolve(allOf[0], root), ...rest}; }
    return s || {};
  }

  const typeOf = (v) => v === null ? "null" : Array.isArray(v) ? "array" :
    typeof v === "number" ? (Number.isInteger(v) ? "integer" : "number") : typeof v;

  // The problems of `value` against `schema`, as ["path: message"]; [] when it is valid.
  function validate(schema, value, root = schema, path = "") {
    const s = resolve(schema, root);
    const where = path || "the value";
    const out = [];
    if (s.anyOf || s.oneOf) {
      const options = s.anyOf || s.oneOf;
      if (!options.some((o) => validate(o, value, root, path).length === 0))
        out.push(`${where}: matches none of the allowed shapes`);
      return out;
    }
    if (s.const !== undefined && JSON.stringify(s.const) !== JSON.stringify(value))
      out.push(`${where}: must be ${JSON.stringify(s.const)}`);
    if (s.enum && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(value)))
      out.push(`${where}: must be one of ${s.enum.map((e) => JSON.stringify(e)).join(", ")}`);
    if (s.type) {
      const types = Array.isArray(s.type) ? s.type : [s.type];
      const t = typeOf(value);
      if (!types.includes(t) && !(t === "integer" && types.includes("number"))) {
        out.push(`${where}: must be ${types.join(" or ")}, not ${t}`);
        return out;
      }
    }
    const t = typeOf(value);
    if (t === "object") {
      for (const key of s.required || []) if (!(key in value)) out.push(`${path ? path + "." : ""}${key}: is required`);
      for (const [key, v] of Object.entries(value)) {
        const sub = s.properties && s.properties[key];
        if (sub) out.push(...validate(sub, v, root, path ? `${path}.${key}` : key));
        else if (s.additionalProperties === false) out.push(`${path ? path + "." : ""}${key}: is not allowed`);
        else if (s.additionalProperties && typeof s.additionalProperties === "object")
          out.push(...validate(s.additionalProperties, v, root, path ? `${path}.${key}` : key));
      }
    } else if (t === "array" && s.items) {
      value.forEach((v, i) => out.push(...validate(s.items, v, root, `${path}[${i}]`)));
    } else if (t === "integer" || t === "number") {
      if (s.minimum !== undefined && value < s.minimum) out.push(`${where}: must be at least ${s.minimum}`);
      if (s.maximum !== undefined && value > s.maximum) out.push(`${where}: must be at most ${s.maximum}`);
      if (s.exclusiveMinimum !== undefined && value <= s.exclusiveMinimum) out.push(`${where}: must be more than ${s.exclusiveMinimum}`);
      if (s.exclusiveMaximum !== undefined && value >= s.exclusiveMaximum) out.push(`${where}: must be less than ${s.exclusiveMaximum}`);
    } else if (t === "string") {
      if (s.minLength !== undefined && value.length < s.minLength) out.push(`${where}: must have at least ${s.minLength} characters`);
      if (s.maxLength !== undefined && value.length > s.maxLength) out.push(`${where}: must have at most ${s.maxLength} characters`);
      if (s.pattern && !new RegExp(s.pattern).test(value)) out.push(`${where}: must match ${s.pattern}`);
    }
    return out;
  }

  function example(schema, root = schema, depth = 0) {
    const s = resolve(schema, root);
    if (s.default !== undefined) return s.default;
    if (s.examples && s.examples.length) return s.examples[0];
    if (s.enum) return s.enum[0];
    if (s.anyOf || s.oneOf) return example((s.anyOf || s.oneOf)[0], root, depth + 1);
    const type = Array.isArray(s.type) ? s.type[0] : s.type;
    if (depth > 6) return null;
    switch (type) {
      case "object": {
        const out = {};
        for (const [k, v] of Object.entries(s.properties || {})) out[k] = example(v, root, depth + 1);
        return out;
      }
      case "array": return [];
      case "string": return "";
      case "integer": case "number": return s.minimum !== undefined ? s.minimum : 0;
      case "boolean": return false;
      case "null": return null;
      default: return null;
    }
  }

  let fieldIds = 0;

  // A form for `schema`: one field per simple property (text, number, checkbox, select), JSON
  // for anything nested. Returns {node, read()} where read() gives the value or throws.
  function form(schema, prefix) {
    const root = schema || {};
    const s = resolve(root, root);
    const type = Array.isArray(s.type) ? s.type[0] : s.type;
    const fields = [];
    const node = el("div", {class: "form-fields"});
    const field = (name, sub, required) => {
      const r = resolve(sub, root);
      const id = `${prefix}-${++fieldIds}`;
      const t = Array.isArray(r.type) ? r.type[0] : r.type;
      const label = el("label", {for: id}, r.title || name || "value", required ? el("span", {class: "req", "aria-hidden": "true"}, " *") : null);
      let input, read;
      if (r.enum) {
        input = el("select", {id, name}, r.enum.map((e) => el("option", {value: JSON.stringify(e)}, String(e))));
        read = () => JSON.parse(input.value);
      } else if (t === "boolean") {
        input = el("input", {id, name, type: "checkbox"});
        if (r.default === true) input.checked = true;
        read = () => input.checked;
      } else if (t === "integer" || t === "number") {
        input = el("input", {id, name, type: "number", step: t === "integer" ? "1" : "any",
                              min: r.minimum, max: r.maximum, required: required || null});
        if (r.default !== undefined) input.value = String(r.default);
        read = () => input.value === "" ? undefined : Number(input.value);
      } else if (t === "string") {
        input = el("input", {id, name, type: "text", required: required || null});
        if (r.default !== undefined) input.value = String(r.default);
        read = () => input.value === "" && !required ? undefined : input.value;
      } else {
        input = el("textarea", {id, name, rows: "3", class: "json", spellcheck: "false"});
        input.value = JSON.stringify(example(sub, root), null, 2);
        read = () => { try { return JSON.parse(input.value); } catch (e) { throw new Error(`${name || "value"}: not valid JSON (${e.message})`); } };
      }
      const help = r.description ? el("small", {id: `${id}-help`, text: r.description}) : null;
      if (help) input.setAttribute("aria-describedby", `${id}-help`);
      node.appendChild(el("div", {class: "field"}, label, input, help));
      return read;
    };
    if (type === "object" && s.properties) {
      const required = new Set(s.required || []);
      for (const [name, sub] of Object.entries(s.properties)) fields.push([name, field(name, sub, required.has(name))]);
      return {node, read: () => {
        const out = {};
        for (const [name, read] of fields) { const v = read(); if (v !== undefined) out[name] = v; }
        return out;
      }};
    }
    const read = field("input", root, true);
    return {node, read: () => read()};
  }

  // A modal dialog with a form; `submit(values)` runs on send and may throw to show an error.
  function dialog(title, build, submit, sendLabel = "Send") {
    const errors = el("div", {class: "form-error", role: "alert"});
    const body = build();
    const cancel = el("button", {type: "button", class: "secondary"}, "Cancel");
    const send = el("button", {type: "submit"}, sendLabel);
    const headingId = `dlg-${++fieldIds}`;
    const formNode = el("form", {method: "dialog", novalidate: true}, el("h2", {id: headingId, text: title}), body, errors,
                        el("div", {class: "buttons"}, cancel, send));
    const dlg = el("dialog", {"aria-labelledby": headingId}, formNode);
    cancel.addEventListener("click", () => { dlg.close(); dlg.remove(); });
    dlg.addEventListener("close", () => dlg.remove());
    formNode.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      errors.textContent = "";
      send.disabled = true;
      try {
        await submit();
        dlg.close();
      } catch (e) {
        errors.textContent = String(e.message || e);
      } finally { send.disabled = false; }
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    const first = dlg.querySelector("input, select, textarea");
    if (first) first.focus();
    return dlg;
  }

  function notice(text, kind = "ok") {
    const box = document.getElementById("notice");
    if (!box) return;
    box.className = `notice ${kind}`;
    box.textContent = text;
  }

  function readOnlyGuard() {
    if (CONFIG.readOnly) throw new Error("this dashboard is read-only (started with --read-only)");
  }

  // Start an execution of `wf` (a spec workflow) from a form made of its input schema.
  function startDialog(wf, onStarted) {
    let built, name;
    return dialog(`Start ${wf.name}`, () => {
      built = form(wf.input_schema || {}, "start");
      const nameId = `start-name-${++fieldIds}`;
      name = el("input", {id: nameId, type: "text", name: "executionName", placeholder: "a unique id if left empty"});
      return el("div", {}, built.node, el("div", {class: "field"}, el("label", {for: nameId}, "Execution name (optional)"), name));
    }, async () => {
      readOnlyGuard();
      const input = built.read();
      const problems = validate(wf.input_schema || {}, input);
      if (problems.length) throw new Error(`The input is not valid: ${problems.join("; ")}`);
      const body = {workflow: wf.name, input};
      if (name.value) body.executionName = name.value;
      const answer = await system("startExecution", body);
      notice(`Started ${answer.executionId}${answer.alreadyRunning ? " (it was already running)" : ""}.`);
      if (onStarted) onStarted(answer.executionId);
    }, "Start");
  }

  function jsonDialog(title, schema, submit, sendLabel) {
    let area;
    return dialog(title, () => {
      const id = `json-${++fieldIds}`;
      area = el("textarea", {id, rows: "8", class: "json", spellcheck: "false", "aria-describedby": `${id}-help`});
      area.value = JSON.stringify(example(schema || {}), null, 2);
      return el("div", {class: "field"}, el("label", {for: id}, "Payload (JSON)"), area,
        el("details", {}, el("summary", {}, "Schema"), el("pre", {id: `${id}-help`, text: JSON.stringify(schema || {}, null, 2)})));
    }, async () => {
      readOnlyGuard();
      let value;
      try { value = JSON.parse(area.value); } catch (e) { throw new Error(`The payload is not valid JSON: ${e.message}`); }
      const problems = validate(schema || {}, value);
      if (problems.length) throw new Error(`The payload does not match the schema: ${problems.join("; ")}`);
      await submit(value);
    }, sendLabel);
  }

  function signalDialog(executionId, sig, onSent) {
    return jsonDialog(`Send signal ${sig.name}`, sig.payload_schema, async (payload) => {
      await system("sendSignal", {executionId, signalId: sig.name, payload});
      notice(`Sent ${sig.name} to ${executionId}.`);
      if (onSent) onSent();
    }, "Send signal");
  }

  function emitDialog(ev) {
    return jsonDialog(`Emit ${ev.name}`, ev.schema, async (payload) => {
      await system("emitEvents", {events: [{name: ev.name, event: payload}]});
      notice(`Emitted ${ev.name}.`);
    }, "Emit");
  }

  let specPromise = null;
  function spec() {
    if (!specPromise) specPromise = system("getServiceSpec", null).catch((e) => { specPromise = null; throw e; });
    return specPromise;
  }

  return {CONFIG, system, el, duration, relative, time, refreshTimes, status, executionHref, nav,
          validate, example, form, dialog, notice, startDialog, signalDialog, emitDialog, spec};
})();
