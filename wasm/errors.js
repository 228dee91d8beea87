// Error classes of the JS API. Real Error subclasses, so `instanceof` and
// stack traces work, each with a stable `code`.

export class ToolgateError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

// A policy did not compile. `diagnostics` lists every problem (errors and
// warnings) with line, column and JSON Pointer.
export class PolicyError extends ToolgateError {
  constructor(diagnostics, source = 'policy') {
    const errors = diagnostics.filter((d) => d.severity === 'error');
    const first = errors[0];
    const where = first ? `${source}:${first.line}:${first.column}: ` : '';
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
    super(`${where}${first ? first.message : 'invalid policy'}${more}`);
    this.code = 'invalid_policy';
    this.diagnostics = diagnostics;
  }
}

// The counter or approval store failed; the call was denied (fail closed).
export class StoreError extends ToolgateError {
  constructor(message, options) {
    super(message, options);
    this.code = 'store_error';
  }
}

// The WebAssembly instance trapped. The façade replaces the instance and
// recompiles policies on next use; this error reports the call that hit it.
export class EngineError extends ToolgateError {
  constructor(message, options) {
    super(message, options);
    this.code = 'engine_error';
  }
}
