import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { committedOffsets, endOffsets, headerOf, produce, readAll } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

/** DLQ redrive on the real broker (DESIGN A7): filters, dry run, the loop guard, the CLI. */

const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);
const token = 'redrive-admin-token';
const root = resolve(import.meta.dirname, '../..');

describe('DLQ redrive', () => {
  it('counts with a filter in a dry run, redrives for real once the app is fixed, and stops a record at its fourth redrive', async () => {
    let fixed = false;
    const { topic, dlqTopic, groupId, app, courier, committedAtEnd } = await scenario({
      partitions: 2,
      env: { COURIER_ADMIN_TOKEN: token },
      handler: (r) => {
        const body = r.body.toString();
        if (body === 'forever') return { status: 422, body: 'never valid' };
        if (body.startsWith('schema')) return { status: fixed ? 200 : 422 };
        if (body === 'bad-request') return { status: 400 };
        return { status: 200 };
      },
    });
    await produce(bootstrap, topic, [
      { key: 'a', value: 'schema-1', partition: 0 },
      { key: 'b', value: 'schema-2', partition: 1 },
      { key: 'c', value: 'schema-3', partition: 0 },
      { key: 'd', value: 'bad-request', partition: 1 },
      { key: 'e', value: 'forever', partition: 0 },
    ]);
    const c = await courier().start().ready();
    await waitFor('all five dead-lettered', async () => ((await endOffsets(bootstrap, dlqTopic)).get(0) ?? 0) === 5);
    await waitFor('the source committed', committedAtEnd);
    const sourceEnds = await endOffsets(bootstrap, topic);

    // Dry run, by status: counts, writes nothing.
    const dry = await c.api('/v1/dlq/redrive', { method: 'POST', token, body: { topic, httpStatus: 422, dryRun: true } });
    expect(dry).toEqual({ status: 200, body: { matched: 4, redriven: 4, skipped: 0, dryRun: true } });
    expect(await endOffsets(bootstrap, topic)).toEqual(sourceEnds);

    // The list shows why each record is there; the CLI prints the same.
    const listed = await c.api(`/v1/dlq?topic=${topic}&errorType=rejected_by_app&httpStatus=400`, { token });
    expect(listed.status).toBe(200);
    expect(listed.body.records).toHaveLength(1);
    expect(listed.body.records[0]).toMatchObject({ originalTopic: topic, originalPartition: 1, httpStatus: 400, keyText: 'd', redriveCount: 0 });
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['dist/main.js', 'dlq', 'list', '--url', await c.apiUrl(), '--topic', topic, '--http-status', '422'],
      {
        cwd: root,
        env: { PATH: process.env.PATH ?? '', COURIER_ADMIN_TOKEN: token },
      },
    );
    expect(stdout.trim().split('\n')).toHaveLength(2 + 4);

    fixed = true;
    const real = await c.api('/v1/dlq/redrive', { method: 'POST', token, body: { topic, errorType: 'rejected_by_app', httpStatus: 422, ratePerSecond: 20 } });
    expect(real.body).toEqual({ matched: 4, redriven: 4, skipped: 0, dryRun: false });
    await waitFor('the fixed records delivered', () =>
      ['schema-1', 'schema-2', 'schema-3'].every((body) => app.receipts.some((r) => r.body.toString() === body && r.answer?.status === 200)),
    );
    const redriven = app.receipts.find((r) => r.body.toString() === 'schema-2' && r.answer?.status === 200);
    expect(redriven?.headers['kafka-header-courier_redriven_from']).toMatch(new RegExp(`^${dlqTopic}-0-\\d+$`));
    expect(redriven?.headers['kafka-header-redrive_count']).toBe('1');
    // The one the app will never take is back in the DLQ, counted once.
    await waitFor('"forever" dead-lettered again', async () => ((await endOffsets(bootstrap, dlqTopic)).get(0) ?? 0) === 6);

    // Redriven a second and a third time, each time from its newest DLQ record; the fourth is refused.
    for (const expected of [2, 3]) {
      const from = ((await endOffsets(bootstrap, dlqTopic)).get(0) ?? 0) - 1;
      expect((await c.api('/v1/dlq/redrive', { method: 'POST', token, body: { topic, fromOffset: from } })).body).toMatchObject({ redriven: 1, skipped: 0 });
      await waitFor(`redrive ${expected} dead-lettered again`, async () => ((await endOffsets(bootstrap, dlqTopic)).get(0) ?? 0) === from + 2);
    }
    const newest = (await readAll(bootstrap, dlqTopic)).at(-1);
    expect(headerOf(newest!, 'redrive_count')).toBe('3');
    const fourth = await c.api('/v1/dlq/redrive', { method: 'POST', token, body: { topic, fromOffset: newest?.offset } });
    expect(fourth.body).toEqual({ matched: 1, redriven: 0, skipped: 1, dryRun: false });
    expect(app.receipts.filter((r) => r.body.toString() === 'forever')).toHaveLength(4);
    // The DLQ was read without a commit in the main group.
    expect([...(await committedOffsets(bootstrap, groupId, dlqTopic)).values()].every((offset) => offset < 0)).toBe(true);
  });
});
