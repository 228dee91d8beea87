// toolgate scan (hand-written declarations for lib/scan.js). Rules: lib/README.md.

export type Category = 'read' | 'write' | 'execute' | 'destructive';
export type Risk = 'low' | 'medium' | 'high' | 'critical';

export type SignalId =
  /** An MCP annotation decided (or agreed with) the category. */
  | 'annotation'
  /** A verb in the name, title or description's first word decided the category. */
  | 'verb'
  /** The annotation claimed a lower category than the verbs; the riskier one counts. */
  | 'annotation_overridden'
  /** Neither a verb nor an annotation: treated as write. */
  | 'unknown_verb'
  /** A path-like input property (path, file, dir, source, destination, ...) or a description mentioning file paths. */
  | 'accepts_paths'
  /** The name or an input property mentions a credential (token, secret, password, key, env, ...). */
  | 'handles_credentials'
  /** More than 6 top-level input properties. */
  | 'high_parameter_count'
  /** An execute tool taking code, a query, a command or a command line (args as an array). */
  | 'arbitrary_code'
  /** annotations.openWorldHint is true. */
  | 'open_world'
  /** Poisoning (lib/poisoning.js): Unicode tag, zero-width, bidi or other invisible characters in a text. */
  | 'hidden_characters'
  /** Poisoning: a tag (<IMPORTANT>) or phrase ("do not tell the user") addressed to the model. */
  | 'instruction_block'
  /** Poisoning: asks for files or secrets (~/.ssh, .env, API keys, chat history). */
  | 'requests_secrets'
  /** Poisoning: a long base64 run, a data: URL or a long URL. */
  | 'long_payload'
  /** Poisoning: a description far longer than a tool needs. */
  | 'long_description'
  /** Poisoning: names a tool this server does not have, or speaks of other servers. */
  | 'mentions_other_tools'
  /** Poisoning: names another server's tool (multi-server scans). */
  | 'shadowing';

export interface Signal {
  id: SignalId;
  /** Why, in words, naming the word, hint or property that triggered it. */
  detail: string;
}

export interface ToolClassification {
  /** The tool's name, verbatim (never escaped: escaping is the UI's job). */
  name: string;
  category: Category;
  risk: Risk;
  signals: Signal[];
  /** Present (true) when a poisoning signal was found; the risk is then critical. */
  flagged?: true;
}

/** An MCP tool as `tools/list` lists it. */
export interface McpTool {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: Record<string, unknown>;
  annotations?: {
    title?: string;
    readOnlyHint?: boolean;
    destructiveHint?: boolean;
    idempotentHint?: boolean;
    openWorldHint?: boolean;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** What scanTools accepts: a tools/list result, a JSON-RPC response carrying one, or a bare array of tools. */
export type ToolsListInput =
  | { tools: McpTool[]; [key: string]: unknown }
  | { jsonrpc?: string; id?: unknown; result: { tools: McpTool[]; [key: string]: unknown } }
  | McpTool[];

export interface StarterPolicy {
  version: '1';
  default: 'deny';
  description: string;
  /** Names of the destructive tools. */
  hide: string[];
  /**
   * read → {}, write → 30/minute, execute → 10/minute (per grant); a tool with the
   * handles_credentials signal also gets "action": "require_approval".
   */
  tools: Record<string, { action?: 'require_approval'; rate_limit?: '30/minute' | '10/minute' }>;
}

export interface ScanResult {
  tools: ToolClassification[];
  policy: StarterPolicy;
  summary: Record<Category, number>;
}

/** Thrown for input that is none of the accepted shapes, or a tool without a non-empty string name. */
export class ScanError extends Error {
  name: 'ScanError';
}

/** The four categories, least to most risky. */
export const CATEGORIES: readonly Category[];

/** Splits an identifier into lower-case words: "envRemove" → ["env", "remove"], "get-sum" → ["get", "sum"]. */
export function splitWords(text: string): string[];

/** Classifies one tool. Throws ScanError when it is not an object with a non-empty string name. */
export function classifyTool(tool: McpTool): ToolClassification;

/** Classifies every tool and writes the starter policy. Throws ScanError for anything but the accepted shapes. */
export function scanTools(toolsListResult: ToolsListInput, options?: { hideFlagged?: boolean }): ScanResult;

/** The tools array of any accepted input shape; ScanError otherwise. */
export function toolsOf(input: ToolsListInput): McpTool[];

/**
 * The starter policy: default deny; read tools {}; write 30/minute; execute 10/minute;
 * destructive hidden; a tool whose signals include handles_credentials needs a human's
 * approval for every call (so secrets are not handed out unattended), which the
 * description says. A duplicated name gets its riskiest category, and approval if any
 * of its classifications needs it. Names containing "*"
 * (a key would be a glob) or invalid Unicode are left to the default deny (a destructive
 * name with "*" is still hidden: a glob in `hide` can only hide more). With hideFlagged,
 * flagged tools (poisoning) are hidden whatever their category.
 */
export function starterPolicy(classifications: Array<Pick<ToolClassification, 'name' | 'category'> & Partial<Pick<ToolClassification, 'signals' | 'flagged'>>>, options?: { hideFlagged?: boolean }): StarterPolicy;

/** A plain-text table (tool, category, risk, signals) and a summary line; control characters shown as \u{..}. */
export function formatScan(result: ScanResult | ToolClassification[], options?: { details?: boolean }): string;

/** Makes a server-provided string safe to print on a terminal: control characters, bidi overrides, line separators and lone surrogates become \u{..}. */
export function terminalSafe(text: string): string;

/** The word lists behind the rules (lower-case whole words after splitting), as documented in lib/README.md. */
export const WORDS: Readonly<{
  destructive: readonly string[];
  execute: readonly string[];
  write: readonly string[];
  read: readonly string[];
  /** "query"/"sql": execute only when the tool takes code-like input. */
  executeWithCodeInput: readonly string[];
  paths: readonly string[];
  credentials: readonly string[];
  code: readonly string[];
  /** Code-like only when the property is an array (a command line). */
  commandLine: readonly string[];
}>;
