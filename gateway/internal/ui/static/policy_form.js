// The policy editor's form: generated from each class's JSON schema, it
// edits a policy object {class, config} in place. Strings become text
// inputs, numbers number inputs, booleans checkboxes, enums selects, lists
// of strings one-per-line textareas, lists of policies (serial's chain) a
// list of members each with its own class and form, and anything else a
// JSON textarea. Every value is shown as text (input values, text nodes).
"use strict";
(function () {
  const { el } = window.luthien;
  // The failure settings every class accepts; shown after its own keys.
  const GUARD_KEYS = ["on_error", "timeout"];
  let nextID = 0;
  const fieldID = () => "pf-" + (++nextID);

  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

  // kindOf says which control edits a property of the given schema.
  const kindOf = (s) => {
    if (!isObject(s)) return "json";
    if (Array.isArray(s.enum) && s.enum.length && s.enum.every((v) => typeof v === "string")) return "enum";
    const t = s.type;
    if (Array.isArray(t)) {
      return t.length && t.every((x) => x === "string" || x === "number" || x === "integer") ? "scalar" : "json";
    }
    switch (t) {
      case "string": return "string";
      case "number": case "integer": return "number";
      case "boolean": return "boolean";
      case "array": {
        const items = isObject(s.items) ? s.items : {};
        if (items.type === "string") return "lines";
        if (items.type === "object" && isObject(items.properties) && items.properties.class) return "chain";
        return "json";
      }
      default: return "json";
    }
  };

  // fits says whether a value already in the config can be edited by a
  // control of that kind; when it cannot, the field falls back to JSON.
  const fits = (kind, prop, v) => {
    if (v === undefined) return true;
    switch (kind) {
      case "string": return typeof v === "string";
      case "enum": return typeof v === "string" && prop.enum.includes(v);
      case "number": return typeof v === "number";
      case "boolean": return typeof v === "boolean";
      case "scalar": return typeof v === "string" || typeof v === "number";
      case "lines": return Array.isArray(v) && v.every((x) => typeof x === "string" && !x.includes("\n") && x !== "");
      case "chain": return Array.isArray(v) && v.every((m) => isObject(m) && typeof m.class === "string");
      default: return true;
    }
  };

  // jsonPlaceholder suggests the shape of a value edited as JSON.
  const jsonPlaceholder = (s) => {
    if (!isObject(s)) return "";
    if (s.type === "array") {
      const items = isObject(s.items) ? s.items : {};
      if (items.type === "array") return '[["from", "to"]]';
      if (items.type === "object") return "[{}]";
      return "[]";
    }
    if (s.type === "object") return "{}";
    return "";
  };

  // pretty writes JSON indented, with short lists of plain values (such
  // as [from, to] pairs) kept on one line.
  const pretty = (v, indent = "") => {
    const inner = indent + "  ";
    if (Array.isArray(v)) {
      if (!v.length) return "[]";
      if (v.every((x) => x === null || typeof x !== "object")) {
        const one = "[" + v.map((x) => JSON.stringify(x)).join(", ") + "]";
        if (one.length + indent.length <= 72) return one;
      }
      return "[\n" + v.map((x) => inner + pretty(x, inner)).join(",\n") + "\n" + indent + "]";
    }
    if (isObject(v)) {
      const keys = Object.keys(v);
      if (!keys.length) return "{}";
      return "{\n" + keys.map((k) => inner + JSON.stringify(k) + ": " + pretty(v[k], inner)).join(",\n") + "\n" + indent + "}";
    }
    return JSON.stringify(v) ?? "null";
  };

  // newForm returns the form generator for a catalogue of classes.
  const newForm = (types) => {
    const byName = new Map();
    for (const t of types) {
      byName.set(t.class, t);
      for (const a of t.aliases || []) byName.set(a, t);
    }
    const lookup = (name) => byName.get(String(name || "").trim());

    // classSelect is a select of every class, showing the class of name
    // (an alias shows as its class; an unknown name as itself).
    const classSelect = (name, attrs) => {
      const t = lookup(name);
      const sel = el("select", attrs);
      if (!t) sel.append(el("option", { value: name }, (name || "(none)") + " (unknown class)"));
      for (const c of types) sel.append(el("option", { value: c.class }, c.class));
      sel.value = t ? t.class : name;
      return sel;
    };

    // render fills container with the form of policy (an object
    // {class, config} it edits in place). changed() is called after every
    // edit; structural edits (a chain's members) re-render their part.
    const render = (container, policy, changed, depth = 0) => {
      container.replaceChildren();
      const t = lookup(policy.class);
      const config = () => {
        if (!isObject(policy.config)) policy.config = {};
        return policy.config;
      };
      const current = isObject(policy.config) ? policy.config : undefined;
      if (!t || (policy.config !== undefined && policy.config !== null && !current)) {
        const why = !t ? `Unknown class "${policy.class}": its config is edited as JSON.` : "The config is not an object: it is edited as JSON.";
        container.append(el("p", { class: "field-warning" }, why));
        container.append(jsonField("config", { type: "object", description: "the whole config" }, false,
          { get: () => policy.config, set: (v) => { policy.config = v === undefined ? {} : v; changed(); } }));
        return;
      }
      const schema = isObject(t.schema) ? t.schema : {};
      const props = isObject(schema.properties) ? schema.properties : {};
      const required = new Set(Array.isArray(schema.required) ? schema.required : []);
      const keys = Object.keys(props);
      keys.sort((a, b) => rank(a) - rank(b));
      function rank(k) { return required.has(k) ? 0 : GUARD_KEYS.includes(k) ? 2 : 1; }
      if (!keys.some((k) => !GUARD_KEYS.includes(k))) {
        container.append(el("p", { class: "muted" }, "This class takes no settings of its own."));
      }
      const cur = current || {};
      const extra = Object.keys(cur).filter((k) => !(k in props));
      if (extra.length) {
        container.append(el("p", { class: "field-warning" },
          `Not in the schema of ${t.class}: ${extra.join(", ")}. The control plane refuses unknown keys: remove them in the text editor.`));
      }
      // The failure settings go in a group of their own, open when set.
      const guard = keys.filter((k) => rank(k) === 2);
      const group = guard.length ? el("details", { class: "failure-settings", open: guard.some((k) => cur[k] !== undefined) },
        el("summary", {}, "On failure: " + guard.join(", "))) : null;
      for (const key of keys) {
        const access = {
          get: () => (isObject(policy.config) ? policy.config[key] : undefined),
          set: (v) => {
            if (v === undefined) { if (isObject(policy.config)) delete policy.config[key]; } else config()[key] = v;
            changed();
          },
        };
        (rank(key) === 2 ? group : container).append(field(key, props[key], required.has(key), access, changed, depth));
      }
      if (group) container.append(group);
    };

    // field builds the control of one key.
    const field = (key, prop, required, access, changed, depth) => {
      let kind = kindOf(prop);
      if (!fits(kind, prop, access.get())) kind = "json";
      switch (kind) {
        case "enum": return enumField(key, prop, required, access);
        case "string": return textField(key, prop, required, access, (s) => s);
        case "scalar": return textField(key, prop, required, access, (s) => (/^-?\d+(\.\d+)?$/.test(s.trim()) ? Number(s) : s));
        case "number": return numberField(key, prop, required, access);
        case "boolean": return boolField(key, prop, required, access);
        case "lines": return linesField(key, prop, required, access);
        case "chain": return chainField(key, prop, required, access, changed, depth);
        default: return jsonField(key, prop, required, access);
      }
    };

    // wrap puts a control in its field: label, required mark, the
    // description and the default.
    const wrap = (key, prop, required, id, control, kind) => {
      const p = isObject(prop) ? prop : {};
      const label = el("label", { for: id, class: "field-label" }, el("code", {}, key),
        required ? el("span", { class: "required", title: "required" }, " *") : null);
      const notes = [];
      if (typeof p.description === "string") notes.push(p.description);
      if (p.default !== undefined && kind !== "boolean") notes.push("default: " + JSON.stringify(p.default));
      if (typeof p.minimum === "number" || typeof p.maximum === "number") {
        notes.push("range: " + (p.minimum ?? "…") + " to " + (p.maximum ?? "…"));
      }
      return el("div", { class: "field field-" + kind + (required ? " is-required" : ""), "data-key": key },
        label, control,
        notes.length ? el("p", { class: "field-description muted" }, notes.join(" · ")) : null,
        el("p", { class: "field-error error", hidden: true }));
    };

    // setFieldError shows or clears a field's own problem.
    const setFieldError = (f, msg) => {
      const p = f.querySelector(":scope > .field-error");
      if (p) { p.textContent = msg || ""; p.hidden = !msg; }
      f.classList.toggle("has-error", !!msg);
    };
    const fieldError = (control, msg) => {
      const f = control.closest(".field");
      if (f) setFieldError(f, msg);
    };

    const textField = (key, prop, required, access, convert) => {
      const id = fieldID();
      const v = access.get();
      const def = isObject(prop) ? prop.default : undefined;
      const input = el("input", { type: "text", id, name: key, autocomplete: "off", spellcheck: "false" });
      input.value = v !== undefined ? String(v) : def !== undefined ? String(def) : "";
      input.addEventListener("input", () => access.set(input.value === "" ? undefined : convert(input.value)));
      return wrap(key, prop, required, id, input, "string");
    };

    const numberField = (key, prop, required, access) => {
      const id = fieldID();
      const p = isObject(prop) ? prop : {};
      const input = el("input", { type: "number", id, name: key, step: p.type === "integer" ? "1" : "any",
        min: typeof p.minimum === "number" ? p.minimum : undefined, max: typeof p.maximum === "number" ? p.maximum : undefined });
      const v = access.get();
      input.value = v !== undefined ? String(v) : p.default !== undefined ? String(p.default) : "";
      input.addEventListener("input", () => {
        if (input.value === "") { fieldError(input, ""); access.set(undefined); return; }
        const n = input.valueAsNumber;
        if (Number.isNaN(n)) { fieldError(input, "not a number"); return; }
        fieldError(input, p.type === "integer" && !Number.isInteger(n) ? "want a whole number" : "");
        access.set(n);
      });
      return wrap(key, prop, required, id, input, "number");
    };

    const boolField = (key, prop, required, access) => {
      const id = fieldID();
      const p = isObject(prop) ? prop : {};
      const input = el("input", { type: "checkbox", id, name: key });
      const v = access.get();
      input.checked = v !== undefined ? v : p.default === true;
      input.addEventListener("change", () => access.set(input.checked));
      return wrap(key, prop, required, id, input, "boolean");
    };

    const enumField = (key, prop, required, access) => {
      const id = fieldID();
      const p = isObject(prop) ? prop : {};
      const sel = el("select", { id, name: key });
      if (p.default === undefined) sel.append(el("option", { value: "" }, required ? "(choose)" : "(not set)"));
      for (const v of p.enum) sel.append(el("option", { value: v }, v));
      const v = access.get();
      sel.value = v !== undefined ? v : p.default !== undefined ? p.default : "";
      sel.addEventListener("change", () => access.set(sel.value === "" ? undefined : sel.value));
      return wrap(key, prop, required, id, sel, "enum");
    };

    const linesField = (key, prop, required, access) => {
      const id = fieldID();
      const p = isObject(prop) ? prop : {};
      const ta = el("textarea", { id, name: key, rows: 4, spellcheck: "false", placeholder: "one per line" });
      const v = access.get();
      ta.value = (v !== undefined ? v : Array.isArray(p.default) ? p.default : []).join("\n");
      ta.addEventListener("input", () => {
        const lines = ta.value.split("\n").map((l) => l.replace(/\r$/, "")).filter((l) => l !== "");
        access.set(lines.length ? lines : undefined);
      });
      return wrap(key, prop, required, id, ta, "lines");
    };

    const jsonField = (key, prop, required, access) => {
      const id = fieldID();
      const p = isObject(prop) ? prop : {};
      const ta = el("textarea", { id, name: key, rows: 4, spellcheck: "false", placeholder: jsonPlaceholder(p), class: "json-field" });
      const v = access.get();
      const shown = v !== undefined ? v : p.default;
      ta.value = shown !== undefined ? pretty(shown) : "";
      ta.addEventListener("input", () => {
        if (ta.value.trim() === "") { ta.classList.remove("invalid-json"); fieldError(ta, ""); access.set(undefined); return; }
        let parsed;
        try {
          parsed = JSON.parse(ta.value);
        } catch (e) {
          ta.classList.add("invalid-json");
          fieldError(ta, "not valid JSON: " + e.message);
          return;
        }
        ta.classList.remove("invalid-json");
        fieldError(ta, "");
        access.set(parsed);
      });
      return wrap(key, p, required, id, ta, "json");
    };

    // chainField edits a list of policies: add, remove, reorder, and each
    // member's class and form (recursively: a member may be a chain).
    const chainField = (key, prop, required, access, changed, depth) => {
      const id = fieldID();
      const list = el("ol", { class: "chain-members", id });
      const members = () => {
        let v = access.get();
        if (!Array.isArray(v)) { v = []; access.set(v); }
        return v;
      };
      const draw = (focus) => {
        list.replaceChildren();
        const ms = Array.isArray(access.get()) ? access.get() : [];
        if (!ms.length) list.append(el("li", { class: "chain-empty muted" }, "No policies yet: add one."));
        ms.forEach((m, i) => {
          const sel = classSelect(m.class, { class: "member-class", "aria-label": `policy ${i + 1} class` });
          sel.addEventListener("change", () => { m.class = sel.value; m.config = {}; changed(); draw(); });
          const btn = (cls, text, label, disabled, f) => {
            const b = el("button", { type: "button", class: "secondary " + cls, "aria-label": label, title: label, disabled }, text);
            b.addEventListener("click", f);
            return b;
          };
          const move = (to, cls) => () => { ms.splice(to, 0, ms.splice(i, 1)[0]); changed(); draw({ index: to, cls }); };
          const body = el("div", { class: "member-form" });
          const item = el("li", { class: "chain-member", "data-index": i },
            el("div", { class: "member-head" }, el("span", { class: "member-pos" }, String(i + 1)), sel,
              btn("member-up", "↑", "move up", i === 0, move(i - 1, "member-up")),
              btn("member-down", "↓", "move down", i === ms.length - 1, move(i + 1, "member-down")),
              btn("member-remove", "Remove", "remove this policy", false, () => { ms.splice(i, 1); changed(); draw(); })),
            body);
          render(body, m, changed, depth + 1);
          list.append(item);
        });
        if (focus) {
          const b = list.querySelector(`:scope > li[data-index="${focus.index}"] .${focus.cls}`);
          (b && !b.disabled ? b : list.querySelector(`:scope > li[data-index="${focus.index}"] .member-class`))?.focus();
        }
      };
      const add = el("button", { type: "button", class: "secondary chain-add" }, "Add a policy");
      add.addEventListener("click", () => {
        const ms = members();
        ms.push({ class: types.some((t) => t.class === "noop") ? "noop" : (types[0] || {}).class || "", config: {} });
        changed();
        draw({ index: ms.length - 1, cls: "member-class" });
      });
      draw();
      return wrap(key, prop, required, id, el("div", { class: "chain" }, list, add), "chain");
    };

    // markError shows a server message on the field it names, e.g.
    // `policy serial: policies[1]: policy string_replacement: config key
    // "replacements": ...` on the second member's replacements, and
    // reports whether it found that field.
    const markError = (root, message) => {
      for (const f of root.querySelectorAll(".field.has-error")) setFieldError(f, "");
      const m = /config key "([^"]+)": ([\s\S]*)$/.exec(message || "");
      if (!m) return false;
      let scope = root;
      for (const [, name, index] of (message.slice(0, m.index)).matchAll(/(\w+)\[(\d+)\]: policy /g)) {
        scope = scope && scope.querySelector(`:scope > .field[data-key="${CSS.escape(name)}"] .chain-members > li[data-index="${index}"] > .member-form`);
      }
      const key = m[1].split(/[.[]/)[0];
      const f = scope && scope.querySelector(`:scope > .field[data-key="${CSS.escape(key)}"]`);
      if (!f) return false;
      setFieldError(f, m[2]);
      return true;
    };

    return { lookup, classSelect, render, markError, pretty };
  };

  window.luthien.policyForm = newForm;
})();
