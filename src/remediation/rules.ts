import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { LineCounter, parseDocument } from 'yaml';
import { Cron } from 'croner';
import { ConfigError, checkSchema, type Src } from '../config.ts';
import { resolveParams, type AnyAction } from '../actions/action.ts';
import { parseDuration } from '../util/duration.ts';
import { matchesAll, parseMatchers, type Matcher } from './matchers.ts';
import { checkTimezone, DAYS, parseClock, type Day, type Window } from './windows.ts';

// Remediation rules (rules/*.yml): which alert runs which action with which params, and the
// safety settings around it. Everything is checked at boot; a problem stops the service
// naming the file, the rule and the field.

const WindowSchema = Type.Object(
  {
    days: Type.Array(Type.Union(DAYS.map((d) => Type.Literal(d))), { minItems: 1 }),
    start: Type.String({ description: 'HH:MM' }),
    end: Type.String({ description: 'HH:MM' }),
    timezone: Type.String({ minLength: 1 }),
  },
  { additionalProperties: false },
);

/** Fields rules and schedules share: the name, what runs, and how the engine runs it. */
const JobName = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$', description: 'lower-case letters, digits and dashes' });
const jobAction = {
  action: Type.String({ minLength: 1 }),
  params: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
};
const jobRunning = {
  max_attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 })),
  windows: Type.Optional(Type.Array(WindowSchema)),
  // Outside its windows a job waits for the next one, or is skipped with the reason logged.
  outside_window: Type.Optional(Type.Union([Type.Literal('wait'), Type.Literal('skip')])),
  // Disruptive actions need windows unless the rule says so here.
  allow_outside_windows: Type.Optional(Type.Boolean()),
  dry_run: Type.Optional(Type.Boolean()),
  enabled: Type.Optional(Type.Boolean()),
};

const RuleSchema = Type.Object(
  {
    name: JobName,
    matchers: Type.Array(Type.String(), { minItems: 1 }),
    ...jobAction,
    delay: Type.Optional(Type.String()),
    cooldown: Type.Optional(Type.String()),
    ...jobRunning,
  },
  { additionalProperties: false },
);

// The runbook's calendar: an action on a cron schedule in a timezone, through the same engine.
const ScheduleSchema = Type.Object(
  {
    name: JobName,
    cron: Type.String({ minLength: 1, description: 'five-field cron expression' }),
    timezone: Type.Optional(Type.String({ minLength: 1 })),
    ...jobAction,
    ...jobRunning,
  },
  { additionalProperties: false },
);

const RulesFileSchema = Type.Object(
  { rules: Type.Optional(Type.Array(RuleSchema)), schedules: Type.Optional(Type.Array(ScheduleSchema)) },
  { additionalProperties: false },
);
type RawSchedule = Static<typeof ScheduleSchema>;
type RawRule = Static<typeof RuleSchema>;

export interface Rule {
  file: string;
  /** An alert rule (matched against Alertmanager's alerts) or a calendar schedule. */
  kind: 'alert' | 'schedule';
  name: string;
  /** For schedules: the cron expression, its timezone, and the next run after an instant. */
  cron?: { expr: string; timezone: string; next(after: Date): Date | null };
  matchers: Matcher[];
  action: AnyAction;
  /** Params as written; string values may hold {{ $labels.NAME }}. */
  params: Record<string, unknown>;
  delayMs: number;
  cooldownMs: number;
  maxAttempts: number;
  windows: Window[];
  outsideWindow: 'wait' | 'skip';
  dryRun: boolean;
}

const TEMPLATE = /\{\{\s*\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g;

function hasTemplate(v: unknown): boolean {
  return typeof v === 'string' && v.includes('{{');
}

/** Replaces {{ $labels.NAME }} in string params; a missing label is an error, not "". */
export function renderParams(params: Record<string, unknown>, labels: Readonly<Record<string, string>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) {
    if (typeof v !== 'string') {
      out[k] = v;
      continue;
    }
    out[k] = v.replace(TEMPLATE, (_m, name: string) => {
      const value = labels[name];
      if (value === undefined) throw new Error(`param ${k}: the alert has no label "${name}"`);
      return value;
    });
  }
  return out;
}

/**
 * The params a rule gives its action for one alert, checked against the action's schema.
 * A label value that makes them invalid is refused here, before anything runs.
 */
export function paramsFor(rule: Rule, labels: Readonly<Record<string, string>>): Record<string, unknown> {
  return resolveParams(rule.action, renderParams(rule.params, labels));
}

export function ruleMatches(rule: Rule, labels: Readonly<Record<string, string>>): boolean {
  return rule.kind === 'alert' && matchesAll(rule.matchers, labels);
}

/** Loads every *.yml / *.yaml file in the directory, in name order. */
export function loadRules(dir: string, actions: readonly AnyAction[]): Rule[] {
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
  } catch (err) {
    throw new ConfigError(dir, '', `cannot read the rules directory: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const rules: Rule[] = [];
  for (const f of files) {
    const file = join(dir, f);
    rules.push(...parseRules(readFileSync(file, 'utf8'), file, actions));
  }
  const seen = new Map<string, string>();
  for (const r of rules) {
    const other = seen.get(r.name);
    if (other) throw new ConfigError(r.file, `rule ${r.name}`, `duplicate rule name (also in ${other})`);
    seen.set(r.name, r.file);
  }
  return rules;
}

function parseRules(text: string, file: string, actions: readonly AnyAction[]): Rule[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) throw new ConfigError(file, '', `YAML syntax: ${first.message.split('\n')[0]}`, first.linePos?.[0]?.line);
  const src: Src = { doc, lines };
  const raw = (doc.toJS() ?? {}) as unknown;
  checkSchema(RulesFileSchema, raw, file, src);
  const parsed = raw as Static<typeof RulesFileSchema>;
  const list = parsed.rules ?? [];
  const schedules = parsed.schedules ?? [];
  return [
    ...list.filter((r) => r.enabled !== false).map((r) => buildRule(r, file, actions, list.indexOf(r))),
    ...schedules.filter((s) => s.enabled !== false).map((s) => buildSchedule(s, file, actions, schedules.indexOf(s))),
  ];
}

function buildSchedule(s: RawSchedule, file: string, actions: readonly AnyAction[], index: number): Rule {
  const timezone = s.timezone ?? 'UTC';
  try {
    checkTimezone(timezone);
  } catch (err) {
    throw new ConfigError(file, `schedules[${index}] (${s.name}).timezone`, (err as Error).message);
  }
  for (const [k, v] of Object.entries(s.params ?? {})) {
    if (typeof v === 'string' && v.includes('{{')) {
      throw new ConfigError(file, `schedules[${index}] (${s.name}).params.${k}`, 'schedules have no alert labels to template from');
    }
  }
  let cron: Cron;
  try {
    cron = new Cron(s.cron, { timezone, paused: true });
  } catch (err) {
    throw new ConfigError(file, `schedules[${index}] (${s.name}).cron`, `bad cron expression "${s.cron}": ${(err as Error).message}`);
  }
  // Shares every check of an alert rule (action, params, windows); it just has no matchers.
  const rule = buildRule(
    { ...s, matchers: ['alertname="schedule"'], delay: undefined, cooldown: '0s' } as RawRule,
    file,
    actions,
    index,
    'schedules',
  );
  return {
    ...rule,
    kind: 'schedule',
    matchers: [],
    cron: { expr: s.cron, timezone, next: (after) => cron.nextRun(after) },
  };
}

function buildRule(r: RawRule, file: string, actions: readonly AnyAction[], index: number, section = 'rules'): Rule {
  const where = (field: string): string => `${section}[${index}] (${r.name}).${field}`;
  const bad = (field: string, problem: string): never => {
    throw new ConfigError(file, where(field), problem);
  };
  const action = actions.find((a) => a.name === r.action);
  if (!action) bad('action', `unknown action "${r.action}" (known: ${actions.map((a) => a.name).join(', ')})`);
  const act = action as AnyAction;

  // Each entry as an Alertmanager route reads its `matchers` lines: one may hold several.
  const matchers = r.matchers.flatMap((m, i) => {
    try {
      return parseMatchers(m);
    } catch (err) {
      return bad(`matchers[${i}]`, (err as Error).message);
    }
  });
  if (!matchers.some((m) => m.name === 'alertname' && (m.op === '=' || m.op === '=~'))) {
    bad('matchers', 'needs an alertname matcher (= or =~), so a rule never acts on every alert');
  }

  const params = r.params ?? {};
  for (const [k, v] of Object.entries(params)) {
    if (hasTemplate(v)) {
      const leftover = String(v).replace(TEMPLATE, '');
      if (leftover.includes('{{') || leftover.includes('}}')) bad(`params.${k}`, 'the only template form is {{ $labels.NAME }}');
    } else if (typeof v === 'string' && v.includes('}}')) {
      bad(`params.${k}`, 'the only template form is {{ $labels.NAME }}');
    }
  }
  // Static params are checked now; templated ones when an alert fills them in.
  for (const err of Value.Errors(act.params, Value.Default(act.params, structuredClone(params)))) {
    const key = err.path.split('/')[1];
    if (key !== undefined && hasTemplate(params[key])) continue;
    bad(`params${err.path.replace(/\//g, '.')}`, `${err.message} (action ${act.name})`);
  }

  const dur = (field: 'delay' | 'cooldown', dflt: number): number => {
    const t = r[field];
    if (t === undefined) return dflt;
    try {
      return parseDuration(t);
    } catch (err) {
      return bad(field, (err as Error).message);
    }
  };
  const windows: Window[] = (r.windows ?? []).map((w, i) => {
    try {
      checkTimezone(w.timezone);
      return { days: w.days as Day[], startMin: parseClock(w.start), endMin: parseClock(w.end), timezone: w.timezone };
    } catch (err) {
      return bad(`windows[${i}]`, (err as Error).message);
    }
  });
  if (act.disruptive && windows.length === 0 && r.allow_outside_windows !== true) {
    bad('windows', `${act.name} is disruptive: give maintenance windows, or allow_outside_windows: true`);
  }
  return {
    file,
    kind: 'alert',
    name: r.name,
    matchers,
    action: act,
    params,
    delayMs: dur('delay', 0),
    cooldownMs: dur('cooldown', 30 * 60_000),
    maxAttempts: r.max_attempts ?? 3,
    windows,
    outsideWindow: r.outside_window ?? 'wait',
    dryRun: r.dry_run ?? false,
  };
}
