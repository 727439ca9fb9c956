import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SyntaxNode } from '@lezer/common';
import { parser } from '@prometheus-io/lezer-promql';
import { find, readManifests } from './manifests.js';
import { root } from './tools.js';

/**
 * The PromQL in deploy/ (the PrometheusRule's alerts, the Grafana dashboard's panels and variables),
 * parsed with Prometheus' own grammar (@prometheus-io/lezer-promql, the parser of Prometheus' UI), so
 * the tests see the metric names and labels each expression really selects, not a regex's guess.
 */

export interface Expression {
  where: string;
  expr: string;
}

export interface ParsedExpression extends Expression {
  syntaxErrors: string[];
  /** Every vector selector: its metric name and the label names of its matchers. */
  selectors: Array<{ metric: string; labels: string[] }>;
  /** Labels named in by/without/on/ignoring/group_left/group_right. */
  groupingLabels: string[];
}

/** Grafana's variables as a query would see them after substitution (values do not matter, syntax does). */
export function substituteGrafanaVariables(expr: string): string {
  return expr
    .replace(/\$__(rate_interval|interval|range)\b/g, '5m')
    .replace(/\$\{[A-Za-z0-9_]+(:[a-z]+)?\}/g, 'value')
    .replace(/\$[A-Za-z0-9_]+/g, 'value')
    .replace(/\[\[[A-Za-z0-9_]+\]\]/g, 'value');
}

export function parse({ where, expr }: Expression): ParsedExpression {
  const tree = parser.parse(expr);
  const syntaxErrors: string[] = [];
  const selectors: ParsedExpression['selectors'] = [];
  const groupingLabels: string[] = [];
  const text = (node: SyntaxNode) => expr.slice(node.from, node.to);
  tree.iterate({
    enter(ref) {
      if (ref.type.isError) syntaxErrors.push(`syntax error at ${ref.from}: …${expr.slice(Math.max(0, ref.from - 20), ref.to + 20)}…`);
      if (ref.name === 'VectorSelector') {
        const node = ref.node;
        const identifier = node.getChild('Identifier');
        const labels: string[] = [];
        const matchers = node.getChild('LabelMatchers');
        if (matchers) for (const matcher of matchers.getChildren('UnquotedLabelMatcher')) labels.push(text(matcher.getChild('LabelName')!));
        if (!identifier) syntaxErrors.push(`a selector without a metric name: ${text(node)}`);
        else selectors.push({ metric: text(identifier), labels });
      }
      if (ref.name === 'GroupingLabels') for (const label of ref.node.getChildren('LabelName')) groupingLabels.push(text(label));
    },
  });
  return { where, expr, syntaxErrors, selectors, groupingLabels };
}

export function ruleExpressions(): Expression[] {
  const rule = find(readManifests('deploy/components/monitoring/prometheusrule.yaml'), 'PrometheusRule');
  return rule.spec.groups.flatMap((group: any) => group.rules.map((r: any) => ({ where: `alert ${r.alert ?? r.record}`, expr: String(r.expr) })));
}

export const DASHBOARD = 'deploy/components/monitoring/dashboards/courier.json';

export function dashboard(): any {
  return JSON.parse(readFileSync(join(root, DASHBOARD), 'utf8'));
}

/** Every query of the dashboard: panel targets, and the selectors inside label_values() variables. */
export function dashboardExpressions(board = dashboard()): Expression[] {
  const out: Expression[] = [];
  const panels = (list: any[]): any[] => list.flatMap((p) => [p, ...panels(p.panels ?? [])]);
  for (const panel of panels(board.panels ?? [])) {
    for (const target of panel.targets ?? []) out.push({ where: `panel "${panel.title}" ${target.refId}`, expr: substituteGrafanaVariables(target.expr) });
  }
  for (const variable of board.templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
    const labelValues = /^label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\)$/.exec(query ?? '');
    if (!labelValues) throw new Error(`variable ${variable.name}: only label_values(selector, label) is understood, got ${query}`);
    out.push({ where: `variable ${variable.name}`, expr: `sum by (${labelValues[2]}) (${substituteGrafanaVariables(labelValues[1]!)})` });
  }
  return out;
}

/** Labels Prometheus itself attaches to every scraped series (the PodMonitor's target labels). */
export const TARGET_LABELS = new Set(['namespace', 'pod', 'container', 'endpoint', 'job', 'instance', 'service']);

const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

/** The exported metric family a selector's name belongs to (a histogram's _bucket/_sum/_count → the family). */
export function family(metric: string, families: Map<string, { type: string }>): string | undefined {
  if (families.has(metric)) return metric;
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (metric.endsWith(suffix)) {
      const base = metric.slice(0, -suffix.length);
      const found = families.get(base);
      if (found && (found.type === 'histogram' || found.type === 'summary')) return base;
    }
  }
  return undefined;
}
