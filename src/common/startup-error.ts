/**
 * A fault at start that the operator fixes (a taken port, an unreachable database, a DATA_DIR in
 * use): main prints its message as one line, without a stack trace, and exits non-zero.
 */
export class StartupError extends Error {}
