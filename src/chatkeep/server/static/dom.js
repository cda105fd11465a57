// Building the page without innerHTML: every piece of user content goes in as text.

const SVG_NS = 'http://www.w3.org/2000/svg';
const PROPERTIES = new Set([
  'value', 'checked', 'disabled', 'hidden', 'selected', 'multiple', 'open', 'required',
  'readOnly', 'autofocus', 'indeterminate',
]);

/** Append children: nodes as they are, anything else as a text node; null/false skipped. */
export function append(element, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/**
 * h('button', {class: 'x', onclick: fn, 'data-testid': 'y'}, 'text', otherNode)
 * Attributes are set as attributes (never as HTML); on* keys with a function add a listener.
 */
export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      const names = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
      if (names) element.className = names;
    } else if (PROPERTIES.has(key)) {
      element[key] = value;
    } else {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  return append(element, children);
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

// Small line icons (24×24, stroked with the current colour).
const ICONS = {
  pin: ['M9 3.5h6', 'M10 3.5v5.5l-3.5 4h11L14 9V3.5', 'M12 13v7.5'],
  home: ['M3.5 11.5L12 4l8.5 7.5', 'M6 10v10h12V10', 'M10 20v-5.5h4V20'],
  search: ['M20 20l-4.6-4.6', { circle: [10.5, 10.5, 6.5] }],
  upload: ['M12 15.5V4', 'M7.5 8.5L12 4l4.5 4.5', 'M4.5 15v4.5h15V15'],
  archive: ['M3.5 4.5h17v4.5h-17z', 'M5 9v10.5h14V9', 'M10 13h4'],
  trash: ['M4 7h16', 'M9 7V4.5h6V7', 'M6.5 7l1 13h9l1-13', 'M10 11v5.5', 'M14 11v5.5'],
  settings: [
    'M4 7h8', 'M16 7h4', 'M4 17h2', 'M10 17h10', { circle: [14, 7, 2.2] },
    { circle: [8, 17, 2.2] },
  ],
  plus: ['M12 5v14', 'M5 12h14'],
  more: [
    { circle: [6, 12, 1.4], fill: true }, { circle: [12, 12, 1.4], fill: true },
    { circle: [18, 12, 1.4], fill: true },
  ],
  left: ['M14.5 6l-6 6 6 6'],
  right: ['M9.5 6l6 6-6 6'],
  clip: [
    'M20 11.5l-7.8 7.8a5 5 0 01-7.1-7.1l8.5-8.5a3.3 3.3 0 014.7 4.7l-8.5 8.5a1.7 1.7 0 01-2.4-2.4l7.8-7.8',
  ],
  send: ['M4.5 12L20 4.5l-4 15-4-6.2z', 'M12 13.3L20 4.5'],
  menu: ['M4 7h16', 'M4 12h16', 'M4 17h16'],
  close: ['M6.5 6.5l11 11', 'M17.5 6.5l-11 11'],
  logout: ['M14 4.5h5v15h-5', 'M9.5 8L5.5 12l4 4', 'M5.5 12H15'],
  download: ['M12 4v11', 'M7.5 10.5L12 15l4.5-4.5', 'M5 19.5h14'],
  edit: ['M4.5 19.5l1-4.5L16 4.5l3.5 3.5L9 18.5z', 'M13.5 7l3.5 3.5'],
  chat: ['M4.5 5.5h15v10h-8l-4.5 4v-4h-2.5z'],
};

export function icon(name, extra) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', extra ? `icon icon-${name} ${extra}` : `icon icon-${name}`);
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '1.8');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  for (const shape of ICONS[name] || []) {
    let child;
    if (typeof shape === 'string') {
      child = document.createElementNS(SVG_NS, 'path');
      child.setAttribute('d', shape);
    } else {
      child = document.createElementNS(SVG_NS, 'circle');
      const [cx, cy, r] = shape.circle;
      child.setAttribute('cx', cx);
      child.setAttribute('cy', cy);
      child.setAttribute('r', r);
      if (shape.fill) child.setAttribute('fill', 'currentColor');
    }
    svg.append(child);
  }
  return svg;
}

// -- formatting -------------------------------------------------------------------------
const FULL = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const CLOCK = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const DAY = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const DAY_YEAR = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

function parse(iso) {
  if (!iso) return null;
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? null : moment;
}

/** "Nov 22, 2026, 8:15 AM" */
export function fullTime(iso) {
  const moment = parse(iso);
  return moment ? FULL.format(moment) : '';
}

/** Compact: the time for today, the day this year, else the date. */
export function shortTime(iso) {
  const moment = parse(iso);
  if (!moment) return '';
  const now = new Date();
  if (moment.toDateString() === now.toDateString()) return CLOCK.format(moment);
  if (moment.getFullYear() === now.getFullYear()) return DAY.format(moment);
  return DAY_YEAR.format(moment);
}

/** A <time> element showing fullTime, with the ISO value as its datetime. */
export function timeElement(iso, short) {
  if (!iso) return null;
  return h('time', { datetime: iso, title: fullTime(iso) }, short ? shortTime(iso) : fullTime(iso));
}

export function bytes(size) {
  if (size === null || size === undefined) return '';
  const units = ['B', 'KB', 'MB', 'GB'];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(value < 10 ? 1 : 0) : value} ${units[unit]}`;
}

export function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many || `${one}s`}`;
}

/** "conversations_added" → "Conversations added" */
export function humanize(key) {
  const text = String(key).replace(/_/g, ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * The snippet as text and <mark> elements. highlights are [start, end) offsets in code
 * points (the server counts Python characters), so the text is split by code point.
 */
export function highlighted(snippet, highlights) {
  const chars = Array.from(snippet || '');
  const spans = (highlights || [])
    .map(([start, end]) => [Math.max(0, start), Math.min(chars.length, end)])
    .filter(([start, end]) => end > start)
    .sort((a, b) => a[0] - b[0]);
  const nodes = [];
  let at = 0;
  for (const [start, end] of spans) {
    if (start < at) continue; // overlapping: keep the first
    if (start > at) nodes.push(chars.slice(at, start).join(''));
    nodes.push(h('mark', null, chars.slice(start, end).join('')));
    at = end;
  }
  if (at < chars.length) nodes.push(chars.slice(at).join(''));
  return nodes;
}
