import { applyDecorators } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length, Matches, ValidateIf } from 'class-validator';
import { ACCOUNT_ID_PATTERN } from '@spillway/engine/plan-definition';

/** Field rules shared by the request bodies, each validated at the edge and named in a 400. */
export const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:@-]{1,200}$/;
const CREDITS = /^\d{1,16}(\.\d{1,6})?$/;
const SIGNED_CREDITS = /^-?\d{1,16}(\.\d{1,6})?$/;

export const AccountIdField = () =>
  applyDecorators(
    ApiProperty({ example: 'acct_1' }),
    Matches(ACCOUNT_ID_PATTERN, { message: 'account_id must be 1-128 characters of [A-Za-z0-9._:@-]' }),
  );

export const IdempotencyKeyField = (options: { required: boolean } = { required: true }) =>
  applyDecorators(
    ApiProperty({ example: 'req-123', required: options.required }),
    Matches(IDEMPOTENCY_KEY, { message: 'idempotency_key must be 1-200 characters of [A-Za-z0-9._:@-]' }),
  );

/**
 * An optional body field: absent (undefined) skips its rules, but an explicit `null` is checked
 * like any other value and so refused with a 400 naming the field (class-validator's IsOptional
 * would let null through to code expecting a string).
 */
export const OptionalField = () => ValidateIf((_object: unknown, value: unknown) => value !== undefined);

/** Text PostgreSQL can store: no U+0000. */
// eslint-disable-next-line no-control-regex -- U+0000 is exactly the character this pattern exists to refuse.
export const NO_NUL = /^[^\u0000]*$/;

export const ReasonField = () =>
  applyDecorators(
    ApiProperty({ example: 'customer request' }),
    IsString(),
    Length(1, 500),
    Matches(NO_NUL, { message: 'reason must not contain U+0000' }),
  );

/** Credits as a decimal string with up to 6 places (signed: may start with '-'). */
export const CreditsField = (name: string, options: { optional?: boolean; signed?: boolean; example?: string } = {}) =>
  applyDecorators(
    ApiProperty({
      example: options.example ?? '100',
      required: !options.optional,
      description: `${options.signed ? 'signed ' : ''}credits, up to 6 decimal places`,
    }),
    ...(options.optional ? [OptionalField()] : []),
    IsString(),
    Matches(options.signed ? SIGNED_CREDITS : CREDITS, {
      message: `${name} must be a ${options.signed ? 'signed ' : ''}decimal string with up to 6 places`,
    }),
  );
