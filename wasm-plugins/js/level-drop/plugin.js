// A Weir plugin in JavaScript, against the same WIT as the Rust ones
// (weir:plugin/processor@0.1.0). componentize-js turns this module into a component;
// build.mjs does it.
//
// It drops the events whose `level` field equals the configured `drop_level` (default
// "debug"), and sets `lang: "js"` and `raw_len` (bytes of the raw line) on every other
// event. Config keys other than `drop_level` are refused.
//
// The flat batch: `bytes` (Uint8Array), `keys` (strings, ids local to the batch), `events`
// ({raw, timestamp, fields} with spans {start, len}), `fields` ({key, value}); values and
// edits are variants: {tag, val}. Errors are thrown as the WIT `error` variant.

const decoder = new TextDecoder();
let dropLevel = "debug";

export const batchProcessor = {
  init(config) {
    for (const [key, value] of config) {
      if (key === "drop_level") {
        dropLevel = value;
      } else {
        throw { tag: "fatal", val: `unknown config key \`${key}\` (expected drop_level)` };
      }
    }
  },

  process(batch) {
    // Once per batch: the ids of the keys we read, and the new keys we write.
    const level = batch.keys.indexOf("level");
    const newKeys = ["lang", "raw_len"];
    const lang = batch.keys.length;
    const rawLen = batch.keys.length + 1;
    const js = new TextEncoder().encode("js");
    const edits = [];
    batch.events.forEach((event, i) => {
      if (level >= 0) {
        for (let f = event.fields.start; f < event.fields.start + event.fields.len; f++) {
          const field = batch.fields[f];
          if (field.key === level && field.value.tag === "str") {
            const { start, len } = field.value.val;
            if (decoder.decode(batch.bytes.subarray(start, start + len)) === dropLevel) {
              edits.push({ tag: "drop", val: i });
              return;
            }
          }
        }
      }
      edits.push({ tag: "set", val: { event: i, key: lang, value: { tag: "str", val: { start: 0, len: js.length } } } });
      edits.push({ tag: "set", val: { event: i, key: rawLen, value: { tag: "int", val: BigInt(event.raw.len) } } });
    });
    return { bytes: js, newKeys, edits };
  },
};
