// The version of the state-evolution code. Snapshots written by another version are discarded,
// so bump STATE_FORMAT whenever a reducer or the emulated kernel changes what a state holds.
export const STATE_FORMAT = 3;
export const PACKAGE_VERSION = '0.1.0';
export const CODE_VERSION = `${PACKAGE_VERSION}+state.${STATE_FORMAT}`;
