// The error of a command the domain refuses (unknown ids, a state that does not allow it, a
// conflict): the session's, and the refusals of the deciders it runs.
import { CodedError } from '../lib/coded-error.js';

/** A command the domain refuses: unknown ids, a state that does not allow it, a conflict. */
export class DomainError extends CodedError<'not_found' | 'invalid_state' | 'conflict' | 'invalid_request'> {}
