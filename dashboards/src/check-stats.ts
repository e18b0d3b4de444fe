// The stats the overview shares with the other dashboards: each is one check of the runbook's
// morning check, built once here so that the overview and the dashboard that goes into detail
// show the same query, colours and limits. The caller names and describes the stat (the
// overview says more about the runbook) and sizes it.
import type { StatBuilder } from './common.ts';
import {
  higherIsWorse,
  increaseFromZero,
  instant,
  lowerIsWorse,
  newestBackupAge,
  pgConnectionsRatio,
  pgReplicationLag,
  redisHitRatio,
  redisMemoryRatio,
  sel,
  stat,
  steps,
  upStat,
  valueText,
  yesNoStat,
  zeroIsGood,
} from './common.ts';
import { runbook as r } from '../../src/runbook.ts';

// ---------------------------------------------------------------------------------------
// Collections

/** UP / DOWN for every collector and target: whether its last collection succeeded. */
export function collectionsStat(title: string, description: string): StatBuilder {
  return upStat(title, description).withTarget(instant(`min by (collector, target) (housekeeper_collector_success${sel()})`, '{{collector}} {{target}}'));
}

// ---------------------------------------------------------------------------------------
// Postgres and PgBouncer

/** Postgres client connections over the usable maximum, at the runbook's levels. */
export function pgConnectionsStat(title: string, description: string): StatBuilder {
  return stat(title, 'percentunit', description)
    .withTarget(instant(pgConnectionsRatio(), '{{target}}'))
    .thresholds(higherIsWorse(r.connections.warn, r.connections.crit))
    .decimals(0);
}

/** Replication lag on each replica, at the runbook's levels. */
export function replicationLagStat(title: string, description: string): StatBuilder {
  return stat(title, 's', description)
    .withTarget(instant(pgReplicationLag(), '{{target}}'))
    .thresholds(higherIsWorse(r.replicationLagSeconds.warn, r.replicationLagSeconds.crit))
    .noValue('no replicas');
}

/** Client queries active for longer than the runbook's limit, per server. */
export function longRunningQueriesStat(title: string, description: string): StatBuilder {
  return stat(title, 'none', description)
    .withTarget(instant(`sum by (target) (max by (target, datname) (pg_long_running_queries${sel()}))`, '{{target}}'))
    .thresholds(zeroIsGood('yellow'));
}

/** PgBouncer clients waiting for a server connection, per PgBouncer. */
export function pgbouncerClientsWaitingStat(title: string, description: string): StatBuilder {
  return stat(title, 'none', description)
    .withTarget(instant(`sum by (target) (max by (target, database, user) (pgbouncer_pools_client_waiting_connections${sel()}))`, '{{target}}'))
    .thresholds(zeroIsGood('yellow'));
}

// ---------------------------------------------------------------------------------------
// Redis

/** Redis memory used over maxmemory, at the runbook's levels. */
export function redisMemoryStat(title: string, description: string): StatBuilder {
  return stat(title, 'percentunit', description)
    .withTarget(instant(redisMemoryRatio(), '{{target}}'))
    .thresholds(higherIsWorse(r.redisMemory.warn, r.redisMemory.crit))
    .decimals(0);
}

/** Redis hit ratio over the alert's window, red under the runbook's floor. */
export function redisHitRatioStat(title: string, description: string): StatBuilder {
  return stat(title, 'percentunit', description)
    .withTarget(instant(redisHitRatio(r.hitRatioWindow), '{{target}}'))
    .thresholds(lowerIsWorse(r.hitRatio.warn))
    .decimals(1)
    .noValue('no lookups');
}

// ---------------------------------------------------------------------------------------
// FAISS, backups, Elasticsearch, certificates

/** OK / BROKEN: whether FAISS loads each index file. */
export function faissLoadableStat(title: string, description: string): StatBuilder {
  return yesNoStat(title, description, 'OK', 'BROKEN').withTarget(instant(`min by (target) (faiss_index_loadable${sel()})`, '{{target}}'));
}

/** Recall@10 of each index, red under the default recall floor. */
export function faissRecallStat(title: string, description: string): StatBuilder {
  return stat(title, 'percentunit', description)
    .withTarget(instant(`min by (target) (faiss_index_recall_at_10${sel()})`, '{{target}}'))
    .thresholds(lowerIsWorse(r.faissRecallFloorDefault))
    .decimals(1);
}

/** Age of the newest backup of each kind, at the runbook's levels. */
export function newestBackupAgeStat(title: string, description: string): StatBuilder {
  return stat(title, 's', description)
    .withTarget(instant(newestBackupAge(), '{{kind}}'))
    .thresholds(higherIsWorse(r.backupAgeSeconds.warn, r.backupAgeSeconds.crit))
    .decimals(1);
}

/** VERIFIED / NOT VERIFIED: whether the newest backup of each kind passed verification. */
export function backupsVerifiedStat(title: string, description: string): StatBuilder {
  return yesNoStat(title, description, 'VERIFIED', 'NOT VERIFIED').withTarget(instant(`min by (kind) (backup_last_verified_success${sel()})`, '{{kind}}'));
}

/** Elasticsearch cluster health colour: GREEN, YELLOW or RED. */
export function elasticsearchHealthStat(title: string, description: string): StatBuilder {
  const health = (color: string): string => `max by (target) (elasticsearch_cluster_health_status${sel(`color="${color}"`)})`;
  return stat(title, 'none', description)
    .withTarget(instant(`${health('red')} * 2 + ${health('yellow')}`, '{{target}}'))
    .mappings(valueText({ '0': ['GREEN', 'green'], '1': ['YELLOW', 'yellow'], '2': ['RED', 'red'] }))
    .thresholds(steps('green', [1, 'yellow'], [2, 'red']));
}

/** Days until the first certificate in each chain expires, at the runbook's levels. */
export function certificateDaysLeftStat(title: string, description: string): StatBuilder {
  return stat(title, 'd', description)
    .withTarget(instant(`(min by (target) (ssl_chain_earliest_not_after${sel()}) - time()) / 86400`, '{{target}}'))
    .thresholds(lowerIsWorse(r.certDays.warn, r.certDays.crit))
    .decimals(0);
}

// ---------------------------------------------------------------------------------------
// Remediation. `ruleMatcher` narrows to rules (the remediations dashboard's `$rule`); without
// it, every rule counts.

/** `metric{matchers}`, or the bare metric when there are none. */
function series(metric: string, ...matchers: Array<string | undefined>): string {
  const given = matchers.filter((m) => m !== undefined);
  return given.length === 0 ? metric : `${metric}{${given.join(', ')}}`;
}

/** Remediations with `outcome` finished within `window`, counting a counter's first run (0 when none). */
function remediationsIn(window: string, outcome: string, ruleMatcher: string | undefined): string {
  return `sum${increaseFromZero(series('housekeeper_remediations_total', ruleMatcher, `outcome="${outcome}"`), window)} or vector(0)`;
}

/** How many rules' circuits are open: red from one. */
export function openCircuitsStat(title: string, description: string, ruleMatcher?: string): StatBuilder {
  return stat(title, 'none', description)
    .withTarget(instant(`count(max by (rule) (${series('housekeeper_remediation_circuit_open', ruleMatcher)}) == 1) or vector(0)`, 'open'))
    .thresholds(zeroIsGood());
}

/** Remediations within `window` that failed (red from one) or did not clear the condition (yellow from one). */
export function remediationsFailedStat(title: string, description: string, window: string, ruleMatcher?: string): StatBuilder {
  return stat(title, 'none', description)
    .withTarget(instant(remediationsIn(window, 'failed', ruleMatcher), 'failed'))
    .withTarget(instant(remediationsIn(window, 'not_fixed', ruleMatcher), 'not fixed'))
    .thresholds(zeroIsGood())
    .overrideByName('not fixed', [{ id: 'thresholds', value: zeroIsGood('yellow').build() }])
    .decimals(0);
}

/** Remediations within `window` that cleared the condition. */
export function remediationsFixedStat(title: string, description: string, window: string, ruleMatcher?: string): StatBuilder {
  return stat(title, 'none', description)
    .withTarget(instant(remediationsIn(window, 'fixed', ruleMatcher), 'fixed'))
    .thresholds(steps('blue'))
    .decimals(0);
}
