import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';

/** An OpenAPI 3.1 document as served at /openapi.json (only the parts the checks read). */
export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, OperationObject>>;
  components: { schemas: Record<string, unknown> };
  [key: string]: unknown;
}

export interface OperationObject {
  operationId?: string;
  summary?: string;
  security?: Record<string, string[]>[];
  requestBody?: unknown;
  responses: Record<string, { content?: Record<string, { schema?: unknown }>; headers?: Record<string, unknown> }>;
  'x-spillway-scope'?: string;
}

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/**
 * Checks real answers against the document: the status must be documented for the operation and
 * the body must validate against its JSON Schema (Ajv, draft 2020-12 as OpenAPI 3.1 says, with
 * formats). Records which operations were exercised with a success status.
 */
export class ContractChecker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  readonly exercised = new Set<string>();

  constructor(readonly document: OpenApiDocument) {
    addFormats(this.ajv);
    this.ajv.addSchema({ ...document, $id: 'spillway-openapi' });
  }

  /** The operation whose path template matches `path` (query excluded). */
  operationFor(method: string, path: string): { template: string; operation: OperationObject } {
    const bare = path.split('?')[0];
    for (const [template, item] of Object.entries(this.document.paths)) {
      const pattern = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`);
      const operation = item[method.toLowerCase()];
      if (operation && pattern.test(bare)) return { template, operation };
    }
    throw new Error(`${method} ${bare} is not in the OpenAPI document`);
  }

  /** Throws, naming every violation, unless the answer matches the document. */
  check(method: string, path: string, status: number, body: unknown, contentType: string | null = 'application/json'): void {
    const { template, operation } = this.operationFor(method, path);
    const response = operation.responses[String(status)];
    if (!response)
      throw new Error(
        `${method} ${template} answered ${status}, which the document does not declare (declared: ${Object.keys(operation.responses).join(', ')})`,
      );
    const media = (contentType ?? '').split(';')[0].trim();
    if (!response.content) throw new Error(`${method} ${template} ${status}: the document declares no body`);
    if (!response.content[media]) throw new Error(`${method} ${template} ${status}: content type ${media} is not declared`);
    const id = `spillway-openapi#/${pointer('paths', template, method.toLowerCase(), 'responses', String(status), 'content', media, 'schema')}`;
    const validate = this.ajv.getSchema(id);
    if (!validate) throw new Error(`no schema at ${id}`);
    if (!validate(body))
      throw new Error(
        `${method} ${template} ${status} does not match its schema: ${this.ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 2000)}`,
      );
    if (status < 400) this.exercised.add(`${method.toUpperCase()} ${template}`);
  }

  /** Every operation of the document as "METHOD /template". */
  operations(): string[] {
    return Object.entries(this.document.paths).flatMap(([template, item]) =>
      HTTP_METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${template}`),
    );
  }
}
