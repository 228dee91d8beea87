// Building the component's DOM without ever parsing HTML: every string a
// caller passes (tool names, arguments, messages, scan results) becomes a
// text node or an attribute value, so nothing pasted into the playground can
// inject markup. Shared by every view of <toolgate-playground>.
import { css } from './styles.js';

const svgNS = 'http://www.w3.org/2000/svg';

/** Creates an element. Strings become text nodes; no HTML is ever parsed. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') el.textContent = value;
    else if (key === 'class') el.className = value;
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value' || key === 'checked' || key === 'readOnly' || key === 'disabled') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Creates an SVG element (the chart); `text` becomes its text content. */
export function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(svgNS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

// One constructed stylesheet shared by every component on the page (no
// inline <style> needed under a CSP); a <style> element where unsupported.
let styleSheet = null;
export function adoptStyles(root) {
  if ('adoptedStyleSheets' in Document.prototype && typeof CSSStyleSheet === 'function' && 'replaceSync' in CSSStyleSheet.prototype) {
    styleSheet ??= (() => {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      return sheet;
    })();
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, styleSheet];
  } else {
    root.append(h('style', { text: css }));
  }
}
