// The JSON API, as the web UI uses it: cookies for the session, the CSRF header on
// every request that changes something, and errors as ApiError (never a silent failure).

export class ApiError extends Error {
  constructor(status, body) {
    const detail = (body && body.error) || {};
    super(detail.message || `the server answered ${status}`);
    this.status = status;
    this.code = detail.code || (status ? 'http_error' : 'network');
    this.hint = detail.hint || null;
    this.details = detail.details || null;
  }
}

/** The value of the chatkeep_csrf cookie (double-submit token), or "". */
export function csrfToken() {
  for (const part of document.cookie.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === 'chatkeep_csrf') return decodeURIComponent(rest.join('='));
  }
  return '';
}

function headersFor(method, extra) {
  const headers = { Accept: 'application/json', ...extra };
  if (method !== 'GET' && method !== 'HEAD') {
    const token = csrfToken();
    if (token) headers['X-CSRF-Token'] = token;
  }
  return headers;
}

/** fetch() that turns a network failure into an ApiError. */
export async function send(method, path, { body, headers } = {}) {
  try {
    return await fetch(path, {
      method,
      headers: headersFor(method, headers),
      body,
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (_error) {
    throw new ApiError(0, {
      error: {
        code: 'network',
        message: 'The chatkeep server cannot be reached.',
        hint: "Is 'chatkeep serve' still running?",
      },
    });
  }
}

/** The ApiError of a failed response. */
export async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (_error) {
    body = null;
  }
  return new ApiError(response.status, body);
}

/** One API call: JSON in (a plain object) or a Blob/File as the raw body; JSON out. */
export async function api(method, path, payload) {
  let body;
  const headers = {};
  if (payload instanceof Blob) {
    body = payload;
    headers['Content-Type'] = payload.type || 'application/octet-stream';
  } else if (payload !== undefined) {
    body = JSON.stringify(payload);
    headers['Content-Type'] = 'application/json';
  }
  const response = await send(method, path, { body, headers });
  if (!response.ok) throw await errorOf(response);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path) => api('GET', path);
export const post = (path, payload) => api('POST', path, payload === undefined ? {} : payload);
export const put = (path, payload) => api('PUT', path, payload);
export const patch = (path, payload) => api('PATCH', path, payload);
export const del = (path) => api('DELETE', path);

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '' || value === false) continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export const enc = encodeURIComponent;

/**
 * POST and read a text/event-stream answer: calls onEvent(name, data) for each event.
 * Resolves when the stream ends.
 */
export async function stream(path, payload, onEvent) {
  const response = await send('POST', path, {
    body: JSON.stringify(payload),
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
  });
  if (!response.ok) throw await errorOf(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const flush = (block) => {
    let name = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) name = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (!data.length) return;
    let value = data.join('\n');
    try {
      value = JSON.parse(value);
    } catch (_error) {
      // keep the raw text
    }
    onEvent(name, value);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      flush(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
  buffer += decoder.decode();
  if (buffer.trim()) flush(buffer.trim());
}
