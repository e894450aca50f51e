// Every stream id of the log, in one place: the ledger's clock, and one stream per host, VM,
// migration, imported host trace, checked fleet matrix, recorded guest and template, named by a category prefix
// (the store counts streams by the part before the first '-').
export const LEDGER_STREAM = 'ledger';
export const HOST_STREAM_PREFIX = 'host-';
export const VM_STREAM_PREFIX = 'vm-';
export const MIGRATION_STREAM_PREFIX = 'migration-';
export const TRACE_STREAM_PREFIX = 'trace-';
export const MATRIX_STREAM_PREFIX = 'matrix-';
/** the guest recorded with a VM: its settings as createVm gave them and configureGuest changed them */
export const GUEST_STREAM_PREFIX = 'guest-';
/** a template: one VM's clock state saved once by a VMM strategy, for clones to restore */
export const TEMPLATE_STREAM_PREFIX = 'template-';

export const hostStreamId = (hostId: string): string => `${HOST_STREAM_PREFIX}${hostId}`;
export const vmStreamId = (vmId: string): string => `${VM_STREAM_PREFIX}${vmId}`;
export const migrationStreamId = (migrationId: string): string => `${MIGRATION_STREAM_PREFIX}${migrationId}`;
export const traceStreamId = (traceId: string): string => `${TRACE_STREAM_PREFIX}${traceId}`;
export const matrixStreamId = (matrixId: string): string => `${MATRIX_STREAM_PREFIX}${matrixId}`;
export const guestStreamId = (vmId: string): string => `${GUEST_STREAM_PREFIX}${vmId}`;
export const templateStreamId = (templateId: string): string => `${TEMPLATE_STREAM_PREFIX}${templateId}`;

const idAfter =
  (prefix: string) =>
  (streamId: string): string | null =>
    streamId.startsWith(prefix) ? streamId.slice(prefix.length) : null;
/** The VM, migration or trace a stream id names (null: a stream of another kind). */
export const vmIdOf = idAfter(VM_STREAM_PREFIX);
export const migrationIdOf = idAfter(MIGRATION_STREAM_PREFIX);
export const traceIdOf = idAfter(TRACE_STREAM_PREFIX);
export const matrixIdOf = idAfter(MATRIX_STREAM_PREFIX);
export const guestVmIdOf = idAfter(GUEST_STREAM_PREFIX);
export const templateIdOf = idAfter(TEMPLATE_STREAM_PREFIX);
