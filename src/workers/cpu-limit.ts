/**
 * The container's CPU limit, for COURIER_WORKERS' default. cgroup v2 writes it to `cpu.max` as
 * "<quota> <period>" ("max <period>" without a limit); cgroup v1 to `cpu.cfs_quota_us` (-1 without
 * one) and `cpu.cfs_period_us`. Kubernetes sets both from `resources.limits.cpu`.
 */
export function cpuLimit(files: { cpuMax?: string | undefined; cfsQuotaUs?: string | undefined; cfsPeriodUs?: string | undefined }): number | undefined {
  const [quota, period] = files.cpuMax !== undefined ? files.cpuMax.trim().split(/\s+/) : [files.cfsQuotaUs?.trim(), files.cfsPeriodUs?.trim()];
  const q = Number(quota);
  const p = Number(period);
  if (!quota || quota === 'max' || !Number.isFinite(q) || q <= 0 || !Number.isFinite(p) || p <= 0) return undefined;
  return q / p;
}

/** One worker per whole CPU of the limit (at least one); one without a limit. */
export function defaultWorkers(limit: number | undefined): number {
  return limit === undefined ? 1 : Math.max(1, Math.min(64, Math.floor(limit)));
}
