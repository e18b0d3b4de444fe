// Every statement housekeeper runs on its state database (the queue's tables belong to
// pg-boss, in their own schema). Schema "housekeeper": alert episodes, the remediation log
// (the runbook's maintenance log) and rule circuits.

/**
 * Serialises the budget check with the start of a run, across replicas: taken at the start
 * of the transaction that counts runs and inserts the new "running" row.
 */
export const BUDGET_LOCK = `SELECT pg_advisory_xact_lock(728315002)`;

/** Serialises schema setup across replicas booting together. */
export const SETUP_LOCK = `SELECT pg_advisory_xact_lock(728315001)`;

export const SETUP = `
CREATE SCHEMA IF NOT EXISTS housekeeper;
CREATE TABLE IF NOT EXISTS housekeeper.episodes (
  episode     uuid PRIMARY KEY,
  rule        text NOT NULL,
  alertname   text NOT NULL,
  fingerprint text NOT NULL,
  starts_at   timestamptz NOT NULL,
  target      text NOT NULL,
  labels      jsonb NOT NULL,
  status      text NOT NULL DEFAULT 'firing',
  current_job uuid NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  resolved_at timestamptz
);
CREATE INDEX IF NOT EXISTS episodes_alert ON housekeeper.episodes (fingerprint, starts_at);
CREATE TABLE IF NOT EXISTS housekeeper.remediation_log (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  trigger     text NOT NULL,
  rule        text NOT NULL,
  action      text NOT NULL,
  target      text NOT NULL,
  alertname   text,
  fingerprint text,
  starts_at   timestamptz,
  episode     uuid,
  job_id      uuid,
  attempt     int NOT NULL DEFAULT 1,
  params      jsonb,
  plan        jsonb,
  outcome     text NOT NULL,
  reason      text,
  error       text,
  duration_ms double precision,
  replica     text NOT NULL,
  dry_run     boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS remediation_log_rule_target ON housekeeper.remediation_log (rule, target, at DESC);
CREATE INDEX IF NOT EXISTS remediation_log_job ON housekeeper.remediation_log (job_id);
CREATE TABLE IF NOT EXISTS housekeeper.circuits (
  rule                 text PRIMARY KEY,
  consecutive_failures int NOT NULL DEFAULT 0,
  open                 boolean NOT NULL DEFAULT false,
  opened_at            timestamptz,
  reason               text
);`;

/**
 * Records episodes the first time any replica sees them; repeats change nothing. A batch of
 * accepted alerts at once: $1 is a JSON array of rows. Id order keeps concurrent batches from
 * locking the rows they share in opposite orders.
 */
export const INSERT_EPISODES = `
INSERT INTO housekeeper.episodes (episode, rule, alertname, fingerprint, starts_at, target, labels, current_job)
SELECT e.episode, e.rule, e.alertname, e.fingerprint, e.starts_at, e.target, e.labels, e.episode
FROM jsonb_to_recordset($1::jsonb) AS e(episode uuid, rule text, alertname text, fingerprint text, starts_at timestamptz, target text, labels jsonb)
ORDER BY e.episode
ON CONFLICT (episode) DO NOTHING`;

export const GET_EPISODE = `SELECT status, current_job FROM housekeeper.episodes WHERE episode = $1`;

/** Marks every episode of this alert (fingerprint + startsAt) resolved; returns their live jobs. */
export const RESOLVE_EPISODES = `
UPDATE housekeeper.episodes SET status = 'resolved', resolved_at = now()
WHERE fingerprint = $1 AND starts_at = $2 AND status = 'firing'
RETURNING episode, current_job, rule`;

export const SET_CURRENT_JOB = `UPDATE housekeeper.episodes SET current_job = $2 WHERE episode = $1`;

export const INSERT_LOG = `
INSERT INTO housekeeper.remediation_log
  (trigger, rule, action, target, alertname, fingerprint, starts_at, episode, job_id, attempt,
   params, plan, outcome, reason, error, duration_ms, replica, dry_run, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
        CASE WHEN $13 = 'running' THEN NULL ELSE now() END)
RETURNING id`;

export const FINISH_LOG = `
UPDATE housekeeper.remediation_log
SET outcome = $2, reason = $3, error = $4, duration_ms = $5, finished_at = now()
WHERE id = $1`;

/** A run of this job that a crashed replica left behind. */
export const RUNNING_FOR_JOB = `
SELECT id FROM housekeeper.remediation_log WHERE job_id = $1 AND outcome = 'running'`;

/** When the last real run (not a skip) of this rule on this target finished. */
export const LAST_RUN = `
SELECT max(at) AS at FROM housekeeper.remediation_log
WHERE rule = $1 AND target = $2 AND outcome IN ('fixed', 'not_fixed', 'failed', 'running')`;

/** Real runs in the budget window, across all rules, and the oldest of them. */
export const RUNS_SINCE = `
SELECT count(*)::int AS n, min(at) AS oldest FROM housekeeper.remediation_log
WHERE at > $1 AND outcome IN ('fixed', 'not_fixed', 'failed', 'running') AND NOT dry_run`;

export const GET_CIRCUIT = `SELECT consecutive_failures, open, opened_at, reason FROM housekeeper.circuits WHERE rule = $1`;

export const CIRCUIT_SUCCESS = `
INSERT INTO housekeeper.circuits (rule, consecutive_failures, open) VALUES ($1, 0, false)
ON CONFLICT (rule) DO UPDATE SET consecutive_failures = 0, open = false, opened_at = NULL, reason = NULL`;

/** Counts a failure; opens the circuit at the threshold ($2). Returns the new state. */
export const CIRCUIT_FAILURE = `
INSERT INTO housekeeper.circuits (rule, consecutive_failures, open, opened_at, reason)
VALUES ($1, 1, 1 >= $2, CASE WHEN 1 >= $2 THEN now() END, CASE WHEN 1 >= $2 THEN $3 END)
ON CONFLICT (rule) DO UPDATE SET
  consecutive_failures = housekeeper.circuits.consecutive_failures + 1,
  open = housekeeper.circuits.open OR housekeeper.circuits.consecutive_failures + 1 >= $2,
  opened_at = CASE WHEN NOT housekeeper.circuits.open AND housekeeper.circuits.consecutive_failures + 1 >= $2
                   THEN now() ELSE housekeeper.circuits.opened_at END,
  reason = CASE WHEN housekeeper.circuits.consecutive_failures + 1 >= $2 THEN $3 ELSE housekeeper.circuits.reason END
RETURNING consecutive_failures, open`;

/** Half-open: after the reset period one trial is let through by clearing the open flag. */
export const CIRCUIT_HALF_OPEN = `
UPDATE housekeeper.circuits SET open = false, consecutive_failures = $2 - 1
WHERE rule = $1 AND open AND opened_at < now() - make_interval(secs => $3)`;

export const ALL_CIRCUITS = `SELECT rule, open, consecutive_failures FROM housekeeper.circuits`;

/**
 * The log, newest first, with optional filters; keyset paging on id. $1 rule, $2 action,
 * $3 target, $4 outcome, $5 since, $6 until, $7 before id, $8 limit. NULL means "any".
 */
export const LIST_LOG = `
SELECT id, at, finished_at, trigger, rule, action, target, alertname, fingerprint, starts_at, episode,
       job_id, attempt, params, plan, outcome, reason, error, duration_ms, replica, dry_run
FROM housekeeper.remediation_log
WHERE ($1::text IS NULL OR rule = $1)
  AND ($2::text IS NULL OR action = $2)
  AND ($3::text IS NULL OR target = $3)
  AND ($4::text IS NULL OR outcome = $4)
  AND ($5::timestamptz IS NULL OR at >= $5)
  AND ($6::timestamptz IS NULL OR at < $6)
  AND ($7::bigint IS NULL OR id < $7)
ORDER BY id DESC
LIMIT $8`;

/** `housekeeper check`: failed or not-fixed runs per rule in the last day. */
export const RECENT_FAILURES = `
SELECT rule, count(*)::int AS n, max(coalesce(error, reason)) AS last_error
FROM housekeeper.remediation_log
WHERE at > now() - interval '24 hours' AND outcome IN ('failed', 'not_fixed')
GROUP BY rule ORDER BY rule`;

/** `housekeeper check`: rules whose circuit is open. */
export const OPEN_CIRCUITS = `SELECT rule, reason FROM housekeeper.circuits WHERE open`;
