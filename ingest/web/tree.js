// The metadata document as a collapsible tree: sections, then exiftool groups, then tags with the
// human-readable text and, beside it, the machine value when it differs.
import { el } from "./dom.js";

const isTag = (value) => value !== null && typeof value === "object" && "text" in value && "value" in value;

function leaf(name, text, machine) {
  const row = el("div", { className: "tag" }, el("span", { className: "name" }, name), el("span", { className: "text" }, text));
  if (machine !== undefined && JSON.stringify(machine) !== JSON.stringify(text)) {
    row.append(el("code", { className: "machine", title: "machine value" }, JSON.stringify(machine)));
  }
  row.dataset.search = row.textContent.toLowerCase();
  return row;
}

function node(name, value, depth) {
  if (isTag(value)) return leaf(name, String(value.text), value.value);
  if (value === null || typeof value !== "object") return leaf(name, String(value));
  const children = Object.entries(value).filter(([, child]) => child !== null);
  // Sections open, groups closed: a document holds hundreds of tags.
  const details = el("details", { open: depth === 0 }, el("summary", {}, `${name} (${children.length})`));
  details.append(...children.map(([key, child]) => node(key, child, depth + 1)));
  return details;
}

export function renderTree(container, document) {
  const sections = Object.entries(document || {}).filter(([, value]) => value !== null);
  container.replaceChildren(...sections.map(([name, value]) => node(name, value, 0)));
}

// Shows the tags whose name, text or value holds `text`, and opens the groups holding them.
export function filterTree(container, text) {
  const wanted = text.trim().toLowerCase();
  const visit = (item) => {
    if (item.classList.contains("tag")) {
      item.hidden = Boolean(wanted) && !item.dataset.search.includes(wanted);
      return !item.hidden;
    }
    let any = false;
    for (const child of item.children) if (child.tagName !== "SUMMARY") any = visit(child) || any;
    item.hidden = Boolean(wanted) && !any;
    if (wanted && any) item.open = true;
    return any;
  };
  [...container.children].forEach(visit);
}
