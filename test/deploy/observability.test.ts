import { describe, expect, it } from 'vitest';
import { find, readManifests } from './manifests.js';
import { dashboard, dashboardExpressions, parse, ruleExpressions, substituteGrafanaVariables } from './promql.js';

/**
 * The alerts and the dashboard, offline: every expression parses with Prometheus' grammar, and they
 * cover what operators need. Whether the metric names and labels exist is checked against a running
 * Courier in test/integration/deploy-metrics.test.ts.
 */

describe('PrometheusRule', () => {
  const rule = find(readManifests('deploy/components/monitoring/prometheusrule.yaml'), 'PrometheusRule');
  const alerts = rule.spec.groups.flatMap((g: any) => g.rules);

  it('has the alerts: lag high and growing, DLQ, app down, rebalance storm, max.poll exceeded', () => {
    expect(alerts.map((a: any) => a.alert)).toEqual([
      'CourierConsumerLagHigh',
      'CourierDeadLettering',
      'CourierAppDown',
      'CourierRebalanceStorm',
      'CourierMaxPollIntervalExceeded',
      'CourierCommitsFailing',
    ]);
    const byName = Object.fromEntries(alerts.map((a: any) => [a.alert, a]));
    expect(byName.CourierConsumerLagHigh.expr).toMatch(/courier_consumer_lag/);
    expect(byName.CourierConsumerLagHigh.expr).toMatch(/deriv\(/); // growing, not only high
    expect(byName.CourierDeadLettering.expr).toMatch(/rate\(courier_records_dead_lettered_total\[5m\]\)\) > 0/);
    expect(byName.CourierAppDown.expr.trim()).toBe('courier_app_up == 0');
    expect(byName.CourierRebalanceStorm.expr).toMatch(/courier_rebalances_total/);
    expect(byName.CourierMaxPollIntervalExceeded.expr).toMatch(/courier_max_poll_exceeded_total/);
    for (const alert of alerts) {
      expect(alert.labels.severity, alert.alert).toMatch(/^(warning|critical)$/);
      expect(alert.annotations.summary, alert.alert).toBeTruthy();
      expect(alert.annotations.description, alert.alert).toBeTruthy();
    }
  });

  it.each(ruleExpressions().map((e) => [e.where, e] as const))('%s parses as PromQL and selects only courier_ metrics', (_, expression) => {
    const parsed = parse(expression);
    expect(parsed.syntaxErrors).toEqual([]);
    expect(parsed.selectors.length).toBeGreaterThan(0);
    for (const { metric } of parsed.selectors) expect(metric).toMatch(/^courier_/);
  });

  it('the parser does report a broken expression', () => {
    expect(parse({ where: 'x', expr: 'sum by (topic (rate(courier_x[5m]))' }).syntaxErrors).not.toEqual([]);
    expect(parse({ where: 'x', expr: 'rate(courier_records_consumed_total{topic="a"}[5m])' }).selectors).toEqual([
      { metric: 'courier_records_consumed_total', labels: ['topic'] },
    ]);
  });
});

describe('Grafana dashboard', () => {
  const board = dashboard();
  const panels: any[] = board.panels;

  it('is a dashboard Grafana can import: unique ids, layout, a Prometheus data source variable', () => {
    expect(board.uid).toBe('courier');
    expect(typeof board.schemaVersion).toBe('number');
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const panel of panels) {
      expect(panel.gridPos, panel.title).toMatchObject({ h: expect.any(Number), w: expect.any(Number), x: expect.any(Number), y: expect.any(Number) });
      expect(panel.gridPos.x + panel.gridPos.w, panel.title).toBeLessThanOrEqual(24);
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      expect(new Set(panel.targets.map((t: any) => t.refId)).size, panel.title).toBe(panel.targets.length);
    }
    const variables = board.templating.list.map((v: any) => v.name);
    expect(variables).toEqual(['datasource', 'namespace', 'topic']);
  });

  it('shows lag and backlog age per partition, delivery by outcome, attempt latency p50/p99, in-flight, rebalances and the DLQ', () => {
    const exprs = (title: string) => {
      const panel = panels.find((p) => p.title === title);
      if (!panel) throw new Error(`no panel "${title}"`);
      return panel.targets.map((t: any) => t.expr).join('\n');
    };
    expect(exprs('Consumer lag per partition')).toMatch(/max by \(topic, partition\) \(courier_consumer_lag/);
    expect(exprs('Backlog age per partition')).toMatch(/max by \(topic, partition\) \(courier_lag_seconds/);
    expect(exprs('Backlog age per partition')).toMatch(/max by \(topic, partition\) \(courier_oldest_unacked_age_seconds/);
    expect(exprs('Records by outcome')).toMatch(/courier_records_delivered_total/);
    expect(exprs('Records by outcome')).toMatch(/courier_records_dead_lettered_total/);
    expect(exprs('Delivery attempts by result')).toMatch(/sum by \(result\) \(rate\(courier_delivery_attempts_total/);
    expect(exprs('Attempt latency p50 / p99')).toMatch(/histogram_quantile\(0\.5, .*courier_delivery_duration_seconds_bucket/);
    expect(exprs('Attempt latency p50 / p99')).toMatch(/histogram_quantile\(0\.99, .*courier_delivery_duration_seconds_bucket/);
    expect(exprs('In flight per pod')).toMatch(/courier_in_flight/);
    expect(exprs('Rebalances')).toMatch(/courier_rebalances_total/);
    expect(exprs('Dead-lettered by reason')).toMatch(/courier_records_dead_lettered_total/);
  });

  it.each(dashboardExpressions().map((e) => [e.where, e] as const))('%s parses as PromQL and selects only courier_ metrics', (_, expression) => {
    const parsed = parse(expression);
    expect(parsed.syntaxErrors).toEqual([]);
    expect(parsed.selectors.length).toBeGreaterThan(0);
    for (const { metric } of parsed.selectors) expect(metric).toMatch(/^courier_/);
  });

  it('substitutes Grafana variables before parsing', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax
    expect(substituteGrafanaVariables('rate(x{namespace="$namespace", topic=~"${topic}"}[$__rate_interval])')).toBe(
      'rate(x{namespace="value", topic=~"value"}[5m])',
    );
  });
});
