/**
 * The logging seam. Powertools Logger satisfies this shape in Lambda; locally a JSON-lines
 * logger writes to stderr, keeping stdout for outcome events. Callers pass ids and codes,
 * never credentials or request headers.
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 } as const;
type Level = keyof typeof LEVELS;

export function jsonLogger(
  level: string = process.env.LOG_LEVEL ?? 'info',
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const min = LEVELS[(level.toLowerCase() as Level) in LEVELS ? (level.toLowerCase() as Level) : 'info'];
  const at =
    (lvl: Exclude<Level, 'silent'>) =>
    (message: string, fields: LogFields = {}) => {
      if (LEVELS[lvl] < min) return;
      write(`${JSON.stringify({ level: lvl.toUpperCase(), message, timestamp: new Date().toISOString(), ...fields })}\n`);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
