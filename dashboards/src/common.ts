// Small helpers every housekeeper dashboard is built from (the grafana-foundation-sdk examples'
// shape): the `$datasource` and `$target` variables, Prometheus queries bound to `$datasource`,
// stat / timeseries / table panels that cannot be made without a unit, threshold steps from
// the runbook, the remediation annotations housekeeper posts to Grafana, and the frame every
// dashboard module fills (`defineDashboard`). The stats the overview shares with the other
// dashboards are in check-stats.ts.
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as AnnotationsListBuilder } from '@grafana/grafana-foundation-sdk/annotationslist';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TableBuilder } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';

export { AnnotationsListBuilder, StatBuilder, TableBuilder, TimeseriesBuilder };

/** Every query and panel reads from the data source the operator picks in `$datasource`. */
export const DATASOURCE: common.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

/** Grafana's own annotation store (where housekeeper posts its remediation annotations). */
const GRAFANA_DATASOURCE: common.DataSourceRef = { type: 'grafana', uid: '-- Grafana --' };

/** The tag housekeeper puts on every annotation it posts (config `grafana.tags`, default). */
export const ANNOTATION_TAG = 'housekeeper';

/** Tag shared by every housekeeper dashboard: the dashboards' link dropdown lists them by it. */
export const DASHBOARD_TAG = 'housekeeper';

// ---------------------------------------------------------------------------------------
// Variables

export function datasourceVariable(): dashboard.DatasourceVariableBuilder {
  return new dashboard.DatasourceVariableBuilder('datasource').label('Data source').type('prometheus');
}

/**
 * A multi-value variable over a label's values in the series `selector` selects. "All" is
 * `.*`, so queries match it with `label=~"$name"`.
 */
export function labelVariable(name: string, label: string, selector: string, labelName = name): dashboard.QueryVariableBuilder {
  const query = `label_values(${selector}, ${labelName})`;
  return new dashboard.QueryVariableBuilder(name)
    .label(label)
    .query(query)
    .definition(query)
    .datasource(DATASOURCE)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*')
    .current({ selected: true, text: 'All', value: '$__all' });
}

/** `$target`: the target names from config (every target metric's `target` label). */
export function targetVariable(selector: string): dashboard.QueryVariableBuilder {
  return labelVariable('target', 'Target', selector);
}

// ---------------------------------------------------------------------------------------
// Queries

/** A range query (time series), legend from labels. */
export function query(expr: string, legend = '__auto'): prometheus.DataqueryBuilder {
  return new prometheus.DataqueryBuilder().datasource(DATASOURCE).expr(expr).legendFormat(legend).range();
}

/** An instant query: the value now (stat panels that only show the latest value). */
export function instant(expr: string, legend = '__auto'): prometheus.DataqueryBuilder {
  return new prometheus.DataqueryBuilder().datasource(DATASOURCE).expr(expr).legendFormat(legend).instant();
}

/**
 * How much a counter grew within `window`, per series, counting a series that appeared within
 * the window from zero. housekeeper's event counters (remediations, webhook notifications)
 * create a label set's series at its first event, and increase() cannot see a series' first
 * sample: without this, the first failed remediation after a restart counts 0. The alerts in
 * alerts/housekeeper.yml handle the same case the same way, with the same trade: after a gap in
 * Prometheus's data longer than its 5 m lookback, a series looks new and counts its whole value.
 */
export function increaseFromZero(selector: string, window: string): string {
  return `(increase(${selector}[${window}]) and ${selector} offset ${window} or ${selector})`;
}

/** An instant query in table format: one row per series, one column per label. */
export function tableQuery(expr: string): prometheus.DataqueryBuilder {
  return new prometheus.DataqueryBuilder().datasource(DATASOURCE).expr(expr).instant().format(prometheus.PromQueryFormat.Table);
}

// ---------------------------------------------------------------------------------------
// Thresholds and value mappings

export type Color = 'green' | 'yellow' | 'orange' | 'red' | 'blue' | 'text' | 'transparent';

/** Steps from a base colour: each [value, colour] starts at value (Grafana: "value is met or exceeded"). */
export function steps(base: Color, ...rest: Array<[number, Color]>): dashboard.ThresholdsConfigBuilder {
  return new dashboard.ThresholdsConfigBuilder()
    .mode(dashboard.ThresholdsMode.Absolute)
    .steps([{ value: null, color: base }, ...rest.map(([value, color]) => ({ value, color }))]);
}

/** Higher is worse: green, yellow from `warn`, red from `crit`. */
export function higherIsWorse(warn: number, crit?: number): dashboard.ThresholdsConfigBuilder {
  return crit === undefined ? steps('green', [warn, 'red']) : steps('green', [warn, 'yellow'], [crit, 'red']);
}

/** Lower is worse: red, yellow from `crit`, green from `warn` (hit ratio, days left). */
export function lowerIsWorse(warn: number, crit?: number): dashboard.ThresholdsConfigBuilder {
  return crit === undefined ? steps('red', [warn, 'green']) : steps('red', [crit, 'yellow'], [warn, 'green']);
}

/** Any non-zero count is a problem (`colour` from 1). */
export function zeroIsGood(color: Color = 'red'): dashboard.ThresholdsConfigBuilder {
  return steps('green', [1, color]);
}

/** A plain colour for panels where no value is good or bad (counts, sizes). */
export function neutral(): dashboard.ThresholdsConfigBuilder {
  return steps('blue');
}

/** Value → [text, colour] mappings (state-like gauges: up/down, health colours). */
export function valueText(map: Record<string, [string, Color]>): dashboard.ValueMapping[] {
  const options: Record<string, dashboard.ValueMappingResult> = {};
  Object.entries(map).forEach(([value, [text, color]], index) => {
    options[value] = { text, color, index };
  });
  return [{ type: dashboard.MappingType.ValueToText, options }];
}

export const upDown = (): dashboard.ValueMapping[] => valueText({ '1': ['UP', 'green'], '0': ['DOWN', 'red'] });
export const yesNo = (yes: string, no: string, noColor: Color = 'red'): dashboard.ValueMapping[] =>
  valueText({ '1': [yes, 'green'], '0': [no, noColor] });

/** A ratio as a whole percentage, for descriptions: 0.75 → "75%". */
export const percent = (ratio: number): string => `${Math.round(ratio * 100)}%`;

// ---------------------------------------------------------------------------------------
// Panels. Each takes its unit up front: no housekeeper panel is without one.

/** A stat: the latest value per series, coloured by thresholds, no sparkline. */
export function stat(title: string, unit: string, description: string): StatBuilder {
  return new StatBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .unit(unit)
    .height(4)
    .span(4)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .colorMode(common.BigValueColorMode.Background)
    .graphMode(common.BigValueGraphMode.None)
    .textMode(common.BigValueTextMode.Auto)
    .justifyMode(common.BigValueJustifyMode.Auto)
    .orientation(common.VizOrientation.Auto)
    .thresholds(neutral());
}

/** A stat of a 1/0 state shown as UP / DOWN: green at 1, red below. */
export function upStat(title: string, description: string): StatBuilder {
  return stat(title, 'none', description).mappings(upDown()).thresholds(steps('red', [1, 'green']));
}

/** A stat of a 1/0 outcome shown as `yes` / `no` (verified, loadable, passed): green at 1, `noColor` below. */
export function yesNoStat(title: string, description: string, yes: string, no: string, noColor: Color = 'red'): StatBuilder {
  return stat(title, 'none', description).mappings(yesNo(yes, no, noColor)).thresholds(steps(noColor, [1, 'green']));
}

/** A time series, legend as a table with last and max, thresholds drawn as dashed lines. */
export function timeseries(title: string, unit: string, description: string): TimeseriesBuilder {
  return new TimeseriesBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .unit(unit)
    .height(8)
    .span(12)
    .lineWidth(1)
    .fillOpacity(10)
    .showPoints(common.VisibilityMode.Never)
    .drawStyle(common.GraphDrawStyle.Line)
    .spanNulls(false)
    .legend(
      new common.VizLegendOptionsBuilder()
        .showLegend(true)
        .placement(common.LegendPlacement.Bottom)
        .displayMode(common.LegendDisplayMode.Table)
        .calcs(['lastNotNull', 'max']),
    )
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending))
    .thresholds(neutral())
    .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Off));
}

/** Draws the panel's threshold steps as dashed lines (where a line means "the runbook's limit"). */
export function withThresholdLines(p: TimeseriesBuilder, t: dashboard.ThresholdsConfigBuilder): TimeseriesBuilder {
  return p.thresholds(t).thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed));
}

/** A table of instant values, one row per series (finish it with `columns`). */
export function table(title: string, unit: string, description: string): TableBuilder {
  return new TableBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .unit(unit)
    .height(8)
    .span(24)
    .showHeader(true)
    .cellHeight(common.TableCellHeight.Sm)
    .thresholds(neutral());
}

export interface Columns {
  /** Column renames; a query's value column is `Value #<refId>` when the table has several. */
  rename?: Record<string, string>;
  /** Sort rows by this column. */
  sort?: { field: string; desc: boolean };
}

/**
 * Shapes a table's columns: several instant queries merged into one row per label set, the
 * Time column and scrape labels hidden, value columns renamed, rows sorted.
 */
export function columns(p: TableBuilder, c: Columns = {}): TableBuilder {
  p.withTransformation({ id: 'merge', options: {} }).withTransformation({
    id: 'organize',
    options: { excludeByName: { Time: true, __name__: true, job: true, instance: true }, renameByName: c.rename ?? {} },
  });
  if (c.sort !== undefined) p.withTransformation({ id: 'sortBy', options: { sort: [c.sort] } });
  return p;
}

/** Colours a table column's cells by the panel's thresholds. */
export function colorColumn(p: TableBuilder, column: string): TableBuilder {
  return p.overrideByName(column, [{ id: 'custom.cellOptions', value: { type: 'color-background' } }]);
}

/** Overrides one column's unit (tables whose columns measure different things). */
export function columnUnit(p: TableBuilder, column: string, unit: string): TableBuilder {
  return p.overrideByName(column, [{ id: 'unit', value: unit }]);
}

/** Stacked series (parts of a whole: connections by state, queue by state). */
export function stacked(): common.StackingConfigBuilder {
  return new common.StackingConfigBuilder().mode(common.StackingMode.Normal);
}

/** Grafana's annotation list (its own store): the remediation log, as housekeeper posted it. */
export function annotationsList(title: string, description: string): AnnotationsListBuilder {
  return new AnnotationsListBuilder()
    .title(title)
    .description(description)
    .unit('none')
    .height(10)
    .span(24)
    .onlyFromThisDashboard(false)
    .onlyInTimeRange(true)
    .tags([ANNOTATION_TAG])
    .limit(100)
    .showUser(false)
    .showTime(true)
    .showTags(true)
    .navigateToPanel(false)
    .navigateBefore('10m')
    .navigateAfter('10m');
}

export function row(title: string): dashboard.RowBuilder {
  return new dashboard.RowBuilder(title);
}

// ---------------------------------------------------------------------------------------
// Annotations

/**
 * Grafana's tag filter for its own annotation store. The SDK has no builder for the
 * "grafana" datasource's query, so this is one (the SDK README's custom-query pattern).
 */
class GrafanaTagsQueryBuilder implements cog.Builder<cog.Dataquery> {
  private readonly tags: string[];
  constructor(tags: string[]) {
    this.tags = tags;
  }
  build(): cog.Dataquery {
    const q = { type: 'tags', tags: this.tags, matchAny: false, limit: 100, _implementsDataqueryVariant(): void {} };
    return q;
  }
}

/** Grafana's built-in "Annotations & Alerts" (kept explicit so the JSON says what is shown). */
export function builtInAnnotations(): dashboard.AnnotationQueryBuilder {
  return new dashboard.AnnotationQueryBuilder()
    .name('Annotations & Alerts')
    .datasource(GRAFANA_DATASOURCE)
    .type('dashboard')
    .builtIn(1)
    .enable(true)
    .hide(true)
    .iconColor('rgba(0, 211, 255, 1)');
}

/** Every remediation housekeeper ran, from Grafana's annotation store, by the tag it posts. */
export function remediationAnnotations(): dashboard.AnnotationQueryBuilder {
  return new dashboard.AnnotationQueryBuilder()
    .name('Remediations')
    .datasource(GRAFANA_DATASOURCE)
    .enable(true)
    .hide(false)
    .iconColor('orange')
    .target(new GrafanaTagsQueryBuilder([ANNOTATION_TAG]));
}

// ---------------------------------------------------------------------------------------
// Dashboards

export interface DashboardOptions {
  uid: string;
  title: string;
  description: string;
  /** Series whose `target` label values fill `$target`. */
  targetSelector: string;
  /** Default time range (from, relative to now). */
  from?: string;
  tags?: string[];
  /** The dashboard's own variables, after `$datasource` and `$target`. */
  variables?: dashboard.QueryVariableBuilder[];
}

/** A housekeeper dashboard: stable uid, `$datasource`, `$target` then its own variables, remediation annotations, links to the others. */
export function housekeeperDashboard(o: DashboardOptions): dashboard.DashboardBuilder {
  const d = new dashboard.DashboardBuilder(o.title)
    .uid(o.uid)
    .description(o.description)
    .tags([DASHBOARD_TAG, ...(o.tags ?? [])])
    .editable()
    .refresh('1m')
    .time({ from: o.from ?? 'now-6h', to: 'now' })
    .timezone('browser')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .withVariable(datasourceVariable())
    .withVariable(targetVariable(o.targetSelector))
    .annotation(builtInAnnotations())
    .annotation(remediationAnnotations())
    .link(
      new dashboard.DashboardLinkBuilder('Housekeeper')
        .type(dashboard.DashboardLinkType.Dashboards)
        .tags([DASHBOARD_TAG])
        .asDropdown(true)
        .includeVars(false)
        .keepTime(true)
        .targetBlank(false),
    );
  for (const v of o.variables ?? []) d.withVariable(v);
  return d;
}

/**
 * The finished dashboard: panels numbered in order (stable ids for links and tests) and
 * every query given a refId, so the JSON does not depend on what Grafana fills in on load.
 */
export function finish(d: dashboard.DashboardBuilder): dashboard.Dashboard {
  const out = d.build();
  // The SDK defaults `placement` to "inControlsMenu" (the schema's only value), which tucks
  // the Remediations toggle and the dashboards dropdown into a menu in newer Grafana; left
  // out, both sit in the dashboard's top bar, as in Grafana 11.
  for (const a of out.annotations?.list ?? []) delete a.placement;
  for (const l of out.links ?? []) delete l.placement;
  let id = 1;
  const number = (p: dashboard.Panel | dashboard.RowPanel): void => {
    p.id = id++;
    if (p.type === 'row') {
      for (const child of (p as dashboard.RowPanel).panels) number(child);
      return;
    }
    const targets = (p as dashboard.Panel).targets ?? [];
    targets.forEach((t, i) => {
      const q = t as cog.Dataquery & { refId?: string };
      if (q.refId === undefined) q.refId = String.fromCharCode(65 + i);
    });
  };
  for (const p of out.panels ?? []) number(p);
  return out;
}

export interface DashboardDefinition extends DashboardOptions {
  /** Adds the dashboard's rows and panels to the frame `housekeeperDashboard` made. */
  rows(d: dashboard.DashboardBuilder): void;
}

/** What a dashboard module exports: its uid, and its finished JSON model. */
export interface DashboardModule {
  uid: string;
  build(): dashboard.Dashboard;
}

/** A dashboard module: the housekeeper frame, the dashboard's own rows, then `finish`. */
export function defineDashboard(def: DashboardDefinition): DashboardModule {
  return {
    uid: def.uid,
    build(): dashboard.Dashboard {
      const d = housekeeperDashboard(def);
      def.rows(d);
      return finish(d);
    },
  };
}

// ---------------------------------------------------------------------------------------
// PromQL fragments shared by several dashboards

/** `{target=~"$target", ...}` with extra matchers. */
export function sel(...extra: string[]): string {
  return `{${['target=~"$target"', ...extra].join(', ')}}`;
}

/**
 * Postgres connections over the usable maximum, per target: max_connections less the
 * superuser-reserved and (Postgres 16+) reserved slots. `max by (target)` collapses
 * duplicates from several housekeeper replicas scraping the same server.
 */
export function pgConnectionsRatio(): string {
  const s = sel();
  const m = (metric: string): string => `max by (target) (${metric}${s})`;
  return (
    `max by (target) (sum by (target, instance) (pg_stat_activity_count${s}))\n` +
    `/ (${m('pg_settings_max_connections')} - ${m('pg_settings_superuser_reserved_connections')}` +
    ` - (${m('pg_settings_reserved_connections')} or ${m('pg_settings_max_connections')} * 0))`
  );
}

/** Replication lag per target, on replicas only (`pg_replication_is_replica == 1`: a primary's value is no lag). */
export function pgReplicationLag(): string {
  const s = sel();
  return `max by (target) (pg_replication_lag_seconds${s} and on (target, instance) (pg_replication_is_replica${s} == 1))`;
}

/** Age of the newest backup of each kind. */
export function newestBackupAge(): string {
  return `time() - max by (kind) (backup_last_timestamp_seconds${sel()})`;
}

/** Redis memory used over maxmemory, per target (targets without maxmemory drop out). */
export function redisMemoryRatio(): string {
  const s = sel();
  return `max by (target) (redis_memory_used_bytes${s} / (redis_memory_max_bytes${s} > 0))`;
}

/** Redis hit ratio over `window`, per target (no lookups in the window: no value). */
export function redisHitRatio(window: string): string {
  const s = sel();
  const hits = `rate(redis_keyspace_hits_total${s}[${window}])`;
  const misses = `rate(redis_keyspace_misses_total${s}[${window}])`;
  return `max by (target) (${hits} / ((${hits} + ${misses}) > 0))`;
}
