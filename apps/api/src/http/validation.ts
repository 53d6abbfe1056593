import { ValidationError, ValidationPipe } from '@nestjs/common';
import { ErrorDetail, SpillwayError } from '@spillway/contracts/errors';

function flatten(errors: ValidationError[], parent = ''): ErrorDetail[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.values(error.constraints ?? {}).map((issue) => ({ field, issue }));
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/** DTOs are validated at the edge; every rejected field is named in the 400. */
export const validationPipe = new ValidationPipe({
  transform: true,
  whitelist: true,
  exceptionFactory: (errors) => {
    const details = flatten(errors);
    const message = details.map((d) => `${d.field}: ${d.issue}`).join('; ') || 'invalid request';
    return new SpillwayError(400, 'invalid_request', message, details);
  },
});
