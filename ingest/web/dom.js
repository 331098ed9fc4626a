// Small DOM helpers shared by the views.
export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

export function statusText(view) {
  if (view.status === "completed") return "done";
  const error = view.error || {};
  const reason = `${error.message || "unknown reason"} (${error.code || "?"})`;
  if (view.status === "failed") return `failed: ${reason}`;
  if (view.status === "partial") {
    // Some ops failed, the others are done: the row says which.
    const outcomes = Object.entries(view.outcomes || {});
    const names = (status) => outcomes.filter(([, outcome]) => outcome.status === status).map(([op]) => op).join(", ");
    return `failed ${names("failed")}: ${reason}; done ${names("completed")}`;
  }
  if (view.status === "processing") return `processing ${view.percent || 0}%`;
  return view.status;
}

export const when = (iso) => new Date(iso).toLocaleString();
