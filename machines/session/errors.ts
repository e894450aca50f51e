// The errors a unit of work raises for a command the domain refuses.
export { DomainError } from '../domain-error.js';
