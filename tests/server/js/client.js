// kafkajs driven by tests/server/test_kafkajs.py: one command per run, JSON on stdout.
//   node client.js BOOTSTRAP create TOPIC PARTITIONS
//   node client.js BOOTSTRAP delete TOPIC
//   node client.js BOOTSTRAP topics
//   node client.js BOOTSTRAP produce TOPIC [gzip]        (records as JSON lines on stdin)
//   node client.js BOOTSTRAP consume GROUP TOPIC COUNT    (then commits and reads the commits)
// Keys, values and header values travel as base64 so that any bytes round-trip.
"use strict";
const { Kafka, logLevel, CompressionTypes } = require("kafkajs");

const [bootstrap, command, ...args] = process.argv.slice(2);
const kafka = new Kafka({
  clientId: "eventlog-tests",
  brokers: [bootstrap],
  logLevel: logLevel.ERROR,
  retry: { retries: 10, initialRetryTime: 50 },
});
const b64 = (buf) => (buf === null || buf === undefined ? null : Buffer.from(buf).toString("base64"));
const unb64 = (s) => (s === null ? null : Buffer.from(s, "base64"));

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString().split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

async function withAdmin(fn) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

async function produce(topic, codec) {
  const records = await readStdin();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const out = [];
    // one send per record, so that each record's own partition and offset come back
    for (const r of records) {
      const headers = {};
      for (const [name, value] of r.headers) headers[name] = unb64(value);
      const [meta] = await producer.send({
        topic,
        acks: -1,
        compression: codec === "gzip" ? CompressionTypes.GZIP : CompressionTypes.None,
        messages: [{ key: unb64(r.key), value: unb64(r.value), headers }],
      });
      if (meta.errorCode !== 0) throw new Error(`produce error ${meta.errorCode}`);
      out.push([meta.partition, Number(meta.baseOffset)]);
    }
    return out;
  } finally {
    await producer.disconnect();
  }
}

async function consume(group, topic, count) {
  const consumer = kafka.consumer({
    groupId: group, maxWaitTimeInMs: 20, heartbeatInterval: 100, sessionTimeout: 6000,
    rebalanceTimeout: 10000,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const got = [];
  const ends = {};
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${count} records`)), 30000);
    if (count === 0) {
      // nothing expected: wait for a joined group and a fetch, then stop
      consumer.on(consumer.events.FETCH, () => { clearTimeout(timer); resolve(); });
    }
    consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        got.push({
          partition, offset: Number(message.offset), key: b64(message.key), value: b64(message.value),
          headers: Object.entries(message.headers || {}).map(([k, v]) => [k, b64(v)]),
        });
        ends[partition] = Number(message.offset) + 1;
        if (got.length >= count) { clearTimeout(timer); resolve(); }
      },
    }).catch(reject);
  });
  const commits = Object.entries(ends).map(([partition, offset]) => ({
    topic, partition: Number(partition), offset: String(offset),
  }));
  if (commits.length) await consumer.commitOffsets(commits);
  await consumer.disconnect();
  const committed = await withAdmin((admin) => admin.fetchOffsets({ groupId: group, topics: [topic] }));
  const offsets = {};
  for (const p of committed[0].partitions) offsets[p.partition] = Number(p.offset);
  return { records: got, committed: offsets };
}

async function main() {
  switch (command) {
    case "create":
      return withAdmin((admin) => admin.createTopics({
        waitForLeaders: true, topics: [{ topic: args[0], numPartitions: Number(args[1]), replicationFactor: 1 }],
      }));
    case "delete":
      return withAdmin((admin) => admin.deleteTopics({ topics: [args[0]] }));
    case "topics":
      return withAdmin((admin) => admin.listTopics());
    case "produce":
      return produce(args[0], args[1] || "none");
    case "consume":
      return consume(args[0], args[1], Number(args[2]));
    default:
      throw new Error(`unknown command ${command}`);
  }
}

main().then(
  (result) => { process.stdout.write(JSON.stringify(result === undefined ? null : result) + "\n"); process.exit(0); },
  (err) => { process.stderr.write(`${err.stack || err}\n`); process.exit(1); },
);
