;; A hand-written plugin for the sandbox's limits (tests/limits.rs): a component of two core
;; modules, each with its own linear memory, that does what the first event's raw line
;; says, `<command> <argument>`:
;;
;; | line | the plugin |
;; |---|---|
;; | `grow N` | grows both memories by N pages (64 KiB each), traps if refused (as an allocator that finds no memory aborts), and sets `pages` to the pages both hold |
;; | `table N` | grows its table by N elements, traps if refused, and sets `table` to its size |
;; | `json TEXT` | sets `j` to TEXT as a `json` value, unchecked |
;; | `key NAME` | sets the new key NAME to 1 |
;; | `spray N` | introduces N keys `k0000000`, `k0000001`... and sets each 4 times, in turn, to the edit's index |
;; | `alias N` | returns N new key names that all point at the same 1 MiB of its memory |
;;
;; Each edit goes to event 0; the argument ends at the first byte that is not a digit.
(component
  (core module $other
    (memory (export "memory") 1)
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
    (func (export "pages") (result i32) (memory.size)))

  (core module $main
    (import "other" "grow" (func $grow_other (param i32) (result i32)))
    (import "other" "pages" (func $pages_other (result i32)))
    (memory (export "memory") 1)
    (table $table 0 funcref)
    ;; Where the next allocation goes; reset after each call (the host has copied the
    ;; answer out by the next one).
    (global $heap (mut i32) (i32.const 1024))
    (data (i32.const 16) "pagestablej")

    (func $alloc (param $align i32) (param $size i32) (result i32)
      (local $p i32) (local $end i32)
      (local.set $p
        (i32.and
          (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $p) (local.get $size)))
      (block $done
        (loop $more
          (br_if $done (i32.le_u (local.get $end) (i32.shl (memory.size) (i32.const 16))))
          (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then (unreachable)))
          (br $more)))
      (global.set $heap (local.get $end))
      (local.get $p))

    (func (export "cabi_realloc") (param i32 i32) (param $align i32) (param $size i32) (result i32)
      (call $alloc (local.get $align) (local.get $size)))

    ;; init: ok, whatever the config.
    (func (export "init") (param i32 i32) (result i32)
      (i32.store8 (i32.const 64) (i32.const 0))
      (i32.const 64))

    ;; The first new key's name.
    (func $key (param $ptr i32) (param $len i32)
      (i32.store (i32.const 192) (local.get $ptr))
      (i32.store (i32.const 196) (local.get $len)))

    (func (export "process")
      (param $bytes i32) (param $bytes_len i32) (param $keys i32) (param $keys_len i32)
      (param $events i32) (param $events_len i32) (param $fields i32) (param $fields_len i32)
      (result i32)
      (local $line i32) (local $len i32) (local $arg i32) (local $n i32) (local $i i32)
      (local $c i32) (local $list i32) (local $region i32) (local $d i32) (local $j i32)
      (local $edits i32)
      ;; The first event's raw line, `event.raw` being the first field of the record.
      (local.set $line (i32.add (local.get $bytes) (i32.load (local.get $events))))
      (local.set $len (i32.load offset=4 (local.get $events)))
      ;; $arg: the offset just after the first space.
      (block $found
        (loop $scan
          (br_if $found (i32.ge_u (local.get $arg) (local.get $len)))
          (local.set $c (i32.load8_u (i32.add (local.get $line) (local.get $arg))))
          (local.set $arg (i32.add (local.get $arg) (i32.const 1)))
          (br_if $found (i32.eq (local.get $c) (i32.const 32)))
          (br $scan)))
      ;; $n: the number there.
      (local.set $i (local.get $arg))
      (block $end
        (loop $digits
          (br_if $end (i32.ge_u (local.get $i) (local.get $len)))
          (local.set $c (i32.sub (i32.load8_u (i32.add (local.get $line) (local.get $i))) (i32.const 48)))
          (br_if $end (i32.gt_u (local.get $c) (i32.const 9)))
          (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10)) (local.get $c)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $digits)))
      ;; The answer at 64: ok(edits), the edits' bytes being the batch's own bytes, one new
      ;; key (its name at 192) and one edit (at 128).
      (i32.store8 (i32.const 64) (i32.const 0))
      (i32.store (i32.const 68) (local.get $bytes))
      (i32.store (i32.const 72) (local.get $bytes_len))
      (i32.store (i32.const 76) (i32.const 192))
      (i32.store (i32.const 80) (i32.const 1))
      (i32.store (i32.const 84) (i32.const 128))
      (i32.store (i32.const 88) (i32.const 1))
      (call $key (i32.const 0) (i32.const 0))
      ;; The edit: set (case 1) on event 0, the new key (the batch's keys come first), an
      ;; int (value case 2) of 0 unless a command changes it.
      (memory.fill (i32.const 128) (i32.const 0) (i32.const 32))
      (i32.store8 (i32.const 128) (i32.const 1))
      (i32.store (i32.const 136) (i32.const 0))
      (i32.store (i32.const 140) (local.get $keys_len))
      (i32.store8 (i32.const 144) (i32.const 2))
      (block $done
        ;; `grow N`
        (if (i32.eq (i32.load8_u (local.get $line)) (i32.const 103))
          (then
            (if (i32.eq (memory.grow (local.get $n)) (i32.const -1)) (then (unreachable)))
            (if (i32.eq (call $grow_other (local.get $n)) (i32.const -1)) (then (unreachable)))
            (i64.store (i32.const 152) (i64.extend_i32_u (i32.add (memory.size) (call $pages_other))))
            (call $key (i32.const 16) (i32.const 5))
            (br $done)))
        ;; `table N`
        (if (i32.eq (i32.load8_u (local.get $line)) (i32.const 116))
          (then
            (if (i32.eq (table.grow $table (ref.null func) (local.get $n)) (i32.const -1)) (then (unreachable)))
            (i64.store (i32.const 152) (i64.extend_i32_u (table.size $table)))
            (call $key (i32.const 21) (i32.const 5))
            (br $done)))
        ;; `json TEXT`: value case 5, a span of the edits' bytes (the batch's bytes).
        (if (i32.eq (i32.load8_u (local.get $line)) (i32.const 106))
          (then
            (i32.store8 (i32.const 144) (i32.const 5))
            (i32.store (i32.const 152) (i32.add (i32.load (local.get $events)) (local.get $arg)))
            (i32.store (i32.const 156) (i32.sub (local.get $len) (local.get $arg)))
            (call $key (i32.const 26) (i32.const 1))
            (br $done)))
        ;; `key NAME`
        (if (i32.eq (i32.load8_u (local.get $line)) (i32.const 107))
          (then
            (i64.store (i32.const 152) (i64.const 1))
            (call $key (i32.add (local.get $line) (local.get $arg)) (i32.sub (local.get $len) (local.get $arg)))
            (br $done)))
        ;; `spray N`: N names of 8 bytes (`k` and 7 digits), then 4N sets, 32 bytes each.
        (if (i32.eq (i32.load8_u (local.get $line)) (i32.const 115))
          (then
            (local.set $region (call $alloc (i32.const 1) (i32.shl (local.get $n) (i32.const 3))))
            (local.set $list (call $alloc (i32.const 4) (i32.shl (local.get $n) (i32.const 3))))
            (local.set $i (i32.const 0))
            (block $named
              (loop $name
                (br_if $named (i32.ge_u (local.get $i) (local.get $n)))
                (local.set $c (i32.add (local.get $region) (i32.shl (local.get $i) (i32.const 3))))
                (i32.store8 (local.get $c) (i32.const 107))
                (local.set $d (local.get $i))
                (local.set $j (i32.const 7))
                (block $written
                  (loop $digit
                    (br_if $written (i32.eqz (local.get $j)))
                    (i32.store8 (i32.add (local.get $c) (local.get $j))
                      (i32.add (i32.const 48) (i32.rem_u (local.get $d) (i32.const 10))))
                    (local.set $d (i32.div_u (local.get $d) (i32.const 10)))
                    (local.set $j (i32.sub (local.get $j) (i32.const 1)))
                    (br $digit)))
                (i32.store (i32.add (local.get $list) (i32.shl (local.get $i) (i32.const 3))) (local.get $c))
                (i32.store offset=4 (i32.add (local.get $list) (i32.shl (local.get $i) (i32.const 3))) (i32.const 8))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $name)))
            (local.set $edits (call $alloc (i32.const 8) (i32.shl (local.get $n) (i32.const 7))))
            (memory.fill (local.get $edits) (i32.const 0) (i32.shl (local.get $n) (i32.const 7)))
            (local.set $i (i32.const 0))
            (block $all
              (loop $set
                (br_if $all (i32.ge_u (local.get $i) (i32.shl (local.get $n) (i32.const 2))))
                (local.set $c (i32.add (local.get $edits) (i32.shl (local.get $i) (i32.const 5))))
                (i32.store8 (local.get $c) (i32.const 1))
                (i32.store offset=12 (local.get $c)
                  (i32.add (local.get $keys_len) (i32.rem_u (local.get $i) (local.get $n))))
                (i32.store8 offset=16 (local.get $c) (i32.const 2))
                (i64.store offset=24 (local.get $c) (i64.extend_i32_u (local.get $i)))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $set)))
            (i32.store (i32.const 76) (local.get $list))
            (i32.store (i32.const 80) (local.get $n))
            (i32.store (i32.const 84) (local.get $edits))
            (i32.store (i32.const 88) (i32.shl (local.get $n) (i32.const 2)))
            (br $done)))
        ;; `alias N`: N names, each the same 1 MiB of zero bytes (valid UTF-8), no edits.
        (if (i32.eq (i32.load8_u (local.get $line)) (i32.const 97))
          (then
            (local.set $region (call $alloc (i32.const 1) (i32.const 1048576)))
            (memory.fill (local.get $region) (i32.const 0) (i32.const 1048576))
            (local.set $list (call $alloc (i32.const 4) (i32.mul (local.get $n) (i32.const 8))))
            (local.set $i (i32.const 0))
            (block $filled
              (loop $fill
                (br_if $filled (i32.ge_u (local.get $i) (local.get $n)))
                (i32.store (i32.add (local.get $list) (i32.shl (local.get $i) (i32.const 3))) (local.get $region))
                (i32.store offset=4 (i32.add (local.get $list) (i32.shl (local.get $i) (i32.const 3))) (i32.const 1048576))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $fill)))
            (i32.store (i32.const 76) (local.get $list))
            (i32.store (i32.const 80) (local.get $n))
            (i32.store (i32.const 88) (i32.const 0)))))
      (global.set $heap (i32.const 1024))
      (i32.const 64)))

  (core instance $o (instantiate $other))
  (core instance $m (instantiate $main (with "other" (instance $o))))
  (alias core export $m "memory" (core memory $mem))
  (alias core export $m "cabi_realloc" (core func $realloc))

  ;; The types, imported from weir:plugin/types@0.1.0 as the WIT spells them (an exported
  ;; function may only use types that have a name).
  (import "weir:plugin/types@0.1.0" (instance $types
    (type $s (record (field "start" u32) (field "len" u32)))
    (export "span" (type $span (eq $s)))
    (type $v (variant (case "null") (case "boolean" bool) (case "int" s64) (case "float" f64)
      (case "str" $span) (case "json" $span)))
    (export "value" (type $value (eq $v)))
    (type $f (record (field "key" u32) (field "value" $value)))
    (export "field" (type $field (eq $f)))
    (type $e (record (field "raw" $span) (field "timestamp" (option s64)) (field "fields" $span)))
    (export "event" (type $event (eq $e)))
    (type $b (record (field "bytes" (list u8)) (field "keys" (list string))
      (field "events" (list $event)) (field "fields" (list $field))))
    (export "batch" (type $batch (eq $b)))
    (type $sf (record (field "event" u32) (field "key" u32) (field "value" $value)))
    (export "set-field" (type $set-field (eq $sf)))
    (type $rf (record (field "event" u32) (field "key" u32)))
    (export "remove-field" (type $remove-field (eq $rf)))
    (type $st (record (field "event" u32) (field "timestamp" (option s64))))
    (export "set-timestamp" (type $set-timestamp (eq $st)))
    (type $ed (variant (case "drop" u32) (case "set" $set-field) (case "remove" $remove-field)
      (case "timestamp" $set-timestamp)))
    (export "edit" (type $edit (eq $ed)))
    (type $eds (record (field "bytes" (list u8)) (field "new-keys" (list string))
      (field "edits" (list $edit))))
    (export "edits" (type $edits (eq $eds)))
    (type $er (variant (case "retryable" string) (case "drop-batch" string) (case "fatal" string)))
    (export "error" (type $error (eq $er)))))
  (alias export $types "batch" (type $batch))
  (alias export $types "edits" (type $edits))
  (alias export $types "error" (type $error))

  (func $init (param "config" (list (tuple string string))) (result (result (error $error)))
    (canon lift (core func $m "init") (memory $mem) (realloc $realloc)))
  (func $process (param "batch" $batch) (result (result $edits (error $error)))
    (canon lift (core func $m "process") (memory $mem) (realloc $realloc)))
  (instance $processor (export "init" (func $init)) (export "process" (func $process)))
  (export "weir:plugin/batch-processor@0.1.0" (instance $processor)))
