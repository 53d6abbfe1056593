/**
 * The console's only way to the API. The key lives in sessionStorage (gone when the tab closes),
 * travels only in the Authorization header, and is never put in a URL or logged.
 */
const KEY = 'spillway.apiKey';

export const session = {
  key: (): string | null => sessionStorage.getItem(KEY),
  signIn: (key: string) => sessionStorage.setItem(KEY, key),
  signOut: () => sessionStorage.removeItem(KEY),
};

/** Dispatched on window when the API refuses the session's key (401). */
export const UNAUTHORIZED = 'spillway:unauthorized';

/** An API failure in plain words, with the HTTP status (0: the API could not be reached). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly fields: string[] = [],
  ) {
    super(message);
  }
}

const PLAIN: Record<number, string> = {
  400: 'Some of what was entered is not valid.',
  401: 'This API key is not accepted. Sign in again with a valid key.',
  403: 'This API key is not allowed to do that.',
  404: 'Not found, or not visible to this API key.',
  409: 'This conflicts with what is already there.',
  422: 'This cannot be done.',
  429: 'Too many requests; try again in a moment.',
  503: 'A service Spillway depends on is unavailable; try again shortly.',
};

/** Turns the API's error envelope into a sentence; never shows raw JSON. */
function plainError(status: number, body: unknown, retryAfter: string | null): ApiError {
  const error = (body as { error?: { message?: unknown; details?: { field?: unknown; issue?: unknown }[] } } | null)?.error;
  const details = Array.isArray(error?.details) ? error!.details : [];
  const fields = details.map((d) => (typeof d.field === 'string' ? d.field : '')).filter(Boolean);
  const specifics = details
    .map((d) =>
      [typeof d.field === 'string' ? d.field.replace(/_/g, ' ') : '', typeof d.issue === 'string' ? d.issue : '']
        .filter(Boolean)
        .join(': '),
    )
    .filter(Boolean);
  const message = typeof error?.message === 'string' ? error.message : '';
  const general = PLAIN[status] ?? (status >= 500 ? 'Spillway had a problem answering; try again.' : 'The request was refused.');
  let text =
    status === 401 || status === 403 || status === 503
      ? general
      : specifics.length
        ? `${general} ${specifics.join('; ')}.`
        : message
          ? `${general} ${capitalize(message)}.`
          : general;
  if (retryAfter && status === 503) text += ` (retry in ${retryAfter} s)`;
  return new ApiError(status, text.replace(/\.\.$/, '.'), fields);
}

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** Calls the API with the session's key (or `options.key`, when signing in); throws ApiError in plain words. */
export async function api<T>(method: string, path: string, body?: unknown, options: { key?: string } = {}): Promise<T> {
  const key = options.key ?? session.key();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'The Spillway API could not be reached. Check that it is running.');
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  // A key revoked or expired while signed in: the shell signs out (see main.tsx).
  if (response.status === 401 && key && options.key === undefined) window.dispatchEvent(new Event(UNAUTHORIZED));
  if (!response.ok) throw plainError(response.status, parsed, response.headers.get('retry-after'));
  return parsed as T;
}

/** A fresh idempotency key for a finance action (one per form submission, kept across retries of it). */
export const newIdempotencyKey = (prefix: string) => `console-${prefix}-${crypto.randomUUID()}`;

export const enc = encodeURIComponent;

export interface Whoami {
  key_id: string;
  name?: string;
  tenant?: string | null;
  scopes: string[];
  temporal: { ui_url: string; namespace: string };
}

/** Whether the key holds a scope (admin implies all). */
export const can = (who: Whoami | null, scope: string) => !!who && (who.scopes.includes('admin') || who.scopes.includes(scope));

/** Temporal UI links: the account's workflows (search attribute AccountId), or one workflow. */
export const temporalLinks = (who: Whoami | null) => {
  const base = who ? `${who.temporal.ui_url.replace(/\/$/, '')}/namespaces/${enc(who.temporal.namespace)}/workflows` : '';
  return {
    account: (accountId: string) => `${base}?query=${enc(`AccountId="${accountId}"`)}`,
    workflow: (workflowId: string) => `${base}/${enc(workflowId)}`,
  };
};
