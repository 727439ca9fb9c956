import { describe, expect, it } from 'vitest';
import { peekProperties, takeFirstRecords } from '../../src/kafka/peek.js';
import { tpKey } from '../../src/record.js';

describe('peekProperties', () => {
  it('keeps the connection settings, drops the static member id, and never commits', () => {
    const properties = peekProperties({
      'bootstrap.servers': 'kafka:9092',
      'security.protocol': 'SASL_SSL',
      'group.id': 'orders-courier',
      'group.instance.id': 'pod-0',
      'client.id': 'courier-pod-0',
      'enable.auto.commit': 'false',
      'auto.offset.reset': 'latest',
      'queued.min.messages': '100000',
    });
    expect(properties).toMatchObject({
      'bootstrap.servers': 'kafka:9092',
      'security.protocol': 'SASL_SSL',
      'group.id': 'orders-courier',
      'client.id': 'courier-pod-0-lag',
      'enable.auto.commit': 'false',
      'enable.auto.offset.store': 'false',
      'enable.partition.eof': 'true',
      'auto.offset.reset': 'earliest',
      'queued.min.messages': '1',
    });
    expect(properties['group.instance.id']).toBeUndefined();
  });
});

describe('takeFirstRecords', () => {
  const t0 = { topic: 't', partition: 0 };
  const t1 = { topic: 't', partition: 1 };
  const wanted = new Map([
    [tpKey(t0), 5],
    [tpKey(t1), 9],
  ]);

  it('takes the first record at or after each wanted offset, and null for a partition that ended without one', () => {
    const found = new Map<string, number | null>();
    takeFirstRecords(wanted, [{ ...t0, offset: 4, timestamp: 100 }], [], found);
    expect(found.size).toBe(0);
    takeFirstRecords(
      wanted,
      [
        { ...t0, offset: 6, timestamp: 200 },
        { ...t0, offset: 7, timestamp: 300 },
        { topic: 'other', partition: 0, offset: 9, timestamp: 400 },
      ],
      [t1],
      found,
    );
    expect(found).toEqual(
      new Map([
        [tpKey(t0), 200],
        [tpKey(t1), null],
      ]),
    );
  });

  it('takes a record before an end reported in the same batch, and -1 for a record without a timestamp', () => {
    const found = new Map<string, number | null>();
    takeFirstRecords(
      wanted,
      [
        { ...t1, offset: 9, timestamp: 500 },
        { ...t0, offset: 5, timestamp: undefined },
      ],
      [t1, t0],
      found,
    );
    expect(found).toEqual(
      new Map([
        [tpKey(t1), 500],
        [tpKey(t0), -1],
      ]),
    );
  });
});
