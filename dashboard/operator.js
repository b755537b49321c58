// The operator's REST API, as the dashboard reads it: every call carries the bearer token, and
// every failure becomes an OperatorError with the operator's own message.

export class OperatorError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;  // the HTTP status; 0 when the operator could not be reached
  }
}

const TOKEN_KEY = 'cortex-operator-token';

// The token from the link `cortex dashboard` prints (#token=...), kept for this tab only and
// removed from the address bar, or the one kept earlier.
export function takeToken() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class Operator {
  constructor(token, timeoutMs = 5000) {
    this.token = token;
    this.timeoutMs = timeoutMs;
  }

  async call(path) {
    let response;
    try {
      response = await fetch(path, {
        headers: { Authorization: `Bearer ${this.token}` },
        cache: 'no-store',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new OperatorError(`the operator did not answer (${e.message})`, 0);
    }
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const body = await response.json();
        if (body.error) message = body.error;
      } catch (_) { /* not JSON: keep the status line */ }
      throw new OperatorError(message, response.status);
    }
    return response;
  }

  async json(path) {
    return (await this.call(path)).json();
  }

  info() { return this.json('/v1/info'); }
  apis() { return this.json('/v1/apis'); }
  history(api) { return this.json(`/v1/apis/${encodeURIComponent(api)}/history`); }

  // Log bytes from `offset` (negative: that many from the end) and the offset to ask for next.
  async logs(api, offset, job) {
    let path = `/v1/logs/${encodeURIComponent(api)}?offset=${offset}`;
    if (job) path += `&job=${encodeURIComponent(job)}`;
    const response = await this.call(path);
    const next = Number(response.headers.get('X-Cortex-Next-Offset'));
    return { text: await response.text(), next };
  }
}
