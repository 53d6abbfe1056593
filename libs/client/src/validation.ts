import Ajv2020, { ErrorObject, ValidateFunction } from 'ajv/dist/2020';
import { schemas } from './generated/schemas';

/** One rejected field, named as Spillway's error details name it (`quantity`, `windows.0.limit`, or `body`). */
export interface FieldIssue {
  field: string;
  issue: string;
}

export type SchemaName = keyof typeof schemas;

// One validator per schema for the whole process, compiled on first use (Ajv generates code once).
// Formats (date-time) are not checked: the client passes times through, and checking the three of
// an answer costs more than the rest of it together (~9 µs vs ~3 µs).
const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false });
const compiled = new Map<SchemaName, ValidateFunction>();

/** Compiles every schema now (a few hundred ms once per process): the client does it when constructed, not on its first call. */
export function compileSchemas(): void {
  for (const name of Object.keys(schemas) as SchemaName[]) validator(name);
}

function validator(name: SchemaName): ValidateFunction {
  let validate = compiled.get(name);
  if (!validate) {
    validate = ajv.compile(schemas[name] as object);
    compiled.set(name, validate);
  }
  return validate;
}

function fieldOf(error: ErrorObject): string {
  const path = error.instancePath.slice(1).replace(/\//g, '.');
  const missing = error.keyword === 'required' ? (error.params as { missingProperty: string }).missingProperty : undefined;
  return [path, missing].filter(Boolean).join('.') || 'body';
}

/**
 * The problems of `value` against schema `name` of the OpenAPI document (generated into
 * generated/schemas.ts): the first issue of each wrong field, in schema order; empty when valid.
 */
export function schemaIssues(name: SchemaName, value: unknown): FieldIssue[] {
  const validate = validator(name);
  if (validate(value)) return [];
  const issues = new Map<string, FieldIssue>();
  for (const error of validate.errors ?? []) {
    // `if` only says which branch failed; the branch's own error names the field.
    if (error.keyword === 'if') continue;
    const field = fieldOf(error);
    if (!issues.has(field)) issues.set(field, { field, issue: error.message ?? 'is not valid' });
  }
  return [...issues.values()];
}

/** `field: issue; …`, as Spillway's error messages read. */
export const describeIssues = (issues: FieldIssue[]): string => issues.map((i) => `${i.field}: ${i.issue}`).join('; ');
