;; The pixel loops of the chromatin texture (src/ml/features/texture.ts), over the cell's bounding box.
;; `npm run build:wasm` assembles this file into kernels.generated.ts; a test fails when the two differ.
;;
;; Each function is the JavaScript loop it replaces, in the same order and in float64 where that loop
;; used numbers, so every feature is the one the JavaScript gave (test/ml/features/texture.test.ts).
;;
;; Memory, laid out by the caller: the RGB pixels and the mask of the box's rows (whole image rows),
;; then the box's luma (f64), grey levels (u8, 255 outside the cell), the luma histogram (256 i32), the
;; co-occurrence pairs (16 x 256 i32) and the local binary patterns' classes (256 u8).
(module
  (import "env" "memory" (memory 1))

  ;; Luma of every box pixel; for the cell's pixels grey level 0 (else 255), the histogram of rounded
  ;; luma, and their sum (stored as f64 at $sumAt). Answers how many pixels the cell has.
  (func (export "boxLuma")
    (param $data i32) (param $mask i32) (param $width i32) (param $x0 i32) (param $bw i32) (param $bh i32)
    (param $luma i32) (param $levels i32) (param $histogram i32) (param $sumAt i32)
    (result i32)
    (local $y i32) (local $x i32) (local $p i32) (local $i i32) (local $q i32)
    (local $value f64) (local $sum f64) (local $count i32) (local $h i32)
    (memory.fill (local.get $levels) (i32.const 255) (i32.mul (local.get $bw) (local.get $bh)))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_s (local.get $y) (local.get $bh)))
        (local.set $p (i32.add (i32.mul (local.get $y) (local.get $width)) (local.get $x0)))
        (local.set $i (i32.add (local.get $data) (i32.mul (local.get $p) (i32.const 3))))
        (local.set $p (i32.add (local.get $mask) (local.get $p)))
        (local.set $x (i32.const 0))
        (block $pixelsDone
          (loop $pixels
            (br_if $pixelsDone (i32.ge_s (local.get $x) (local.get $bw)))
            (local.set $value
              (f64.add
                (f64.add
                  (f64.mul (f64.const 0.299) (f64.convert_i32_u (i32.load8_u (local.get $i))))
                  (f64.mul (f64.const 0.587) (f64.convert_i32_u (i32.load8_u offset=1 (local.get $i)))))
                (f64.mul (f64.const 0.114) (f64.convert_i32_u (i32.load8_u offset=2 (local.get $i))))))
            (f64.store (i32.add (local.get $luma) (i32.shl (local.get $q) (i32.const 3))) (local.get $value))
            (if (i32.load8_u (local.get $p))
              (then
                (i32.store8 (i32.add (local.get $levels) (local.get $q)) (i32.const 0))
                ;; value is in [0, 255]: truncating value + 0.5 rounds it.
                (local.set $h (i32.add (local.get $histogram)
                  (i32.shl (i32.trunc_f64_s (f64.add (local.get $value) (f64.const 0.5))) (i32.const 2))))
                (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
                (local.set $count (i32.add (local.get $count) (i32.const 1)))
                (local.set $sum (f64.add (local.get $sum) (local.get $value)))))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (local.set $i (i32.add (local.get $i) (i32.const 3)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (local.set $q (i32.add (local.get $q) (i32.const 1)))
            (br $pixels)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows)))
    (f64.store (local.get $sumAt) (local.get $sum))
    (local.get $count))

  ;; The cell's grey levels: (luma - low) x step, floored and clamped to [0, 15]; 255 stays outside.
  (func (export "quantise")
    (param $luma i32) (param $levels i32) (param $n i32) (param $low f64) (param $step f64)
    (local $q i32) (local $level f64)
    (block $done
      (loop $each
        (br_if $done (i32.ge_s (local.get $q) (local.get $n)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $levels) (local.get $q))) (i32.const 255))
          (then
            (local.set $level
              (f64.mul (f64.sub (f64.load (i32.add (local.get $luma) (i32.shl (local.get $q) (i32.const 3)))) (local.get $low))
                       (local.get $step)))
            (i32.store8 (i32.add (local.get $levels) (local.get $q))
              (if (result i32) (f64.lt (local.get $level) (f64.const 0))
                (then (i32.const 0))
                (else
                  (if (result i32) (f64.ge (local.get $level) (f64.const 15))
                    (then (i32.const 15))
                    (else (i32.trunc_f64_s (local.get $level)))))))))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br $each))))

  ;; Grey-level pairs at distance $d (down, right, down-right and up-right of each cell pixel): adds 1 at
  ;; $pairs[a * 256 + b] (i32), without a branch on b, so that a neighbour outside the cell (b = 255) lands
  ;; in column 255, which the caller does not read.
  (func (export "countPairs")
    (param $levels i32) (param $bw i32) (param $bh i32) (param $d i32) (param $pairs i32)
    (local $y i32) (local $x i32) (local $q i32) (local $row i32) (local $down i32)
    (local $hasDown i32) (local $hasUp i32) (local $at i32)
    (local.set $down (i32.mul (local.get $d) (local.get $bw)))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_s (local.get $y) (local.get $bh)))
        (local.set $hasDown (i32.lt_s (local.get $y) (i32.sub (local.get $bh) (local.get $d))))
        (local.set $hasUp (i32.ge_s (local.get $y) (local.get $d)))
        (local.set $x (i32.const 0))
        (local.set $q (i32.add (local.get $levels) (i32.mul (local.get $y) (local.get $bw))))
        (block $pixelsDone
          (loop $pixels
            (br_if $pixelsDone (i32.ge_s (local.get $x) (local.get $bw)))
            (local.set $row (i32.load8_u (local.get $q)))
            (if (i32.ne (local.get $row) (i32.const 255))
              (then
                (local.set $row (i32.add (local.get $pairs) (i32.shl (local.get $row) (i32.const 10))))
                (if (local.get $hasDown)
                  (then
                    (local.set $at (i32.add (local.get $row) (i32.shl (i32.load8_u (i32.add (local.get $q) (local.get $down))) (i32.const 2))))
                    (i32.store (local.get $at) (i32.add (i32.load (local.get $at)) (i32.const 1)))))
                (if (i32.lt_s (local.get $x) (i32.sub (local.get $bw) (local.get $d)))
                  (then
                    (local.set $at (i32.add (local.get $row) (i32.shl (i32.load8_u (i32.add (local.get $q) (local.get $d))) (i32.const 2))))
                    (i32.store (local.get $at) (i32.add (i32.load (local.get $at)) (i32.const 1)))
                    (if (local.get $hasDown)
                      (then
                    (local.set $at (i32.add (local.get $row) (i32.shl (i32.load8_u (i32.add (i32.add (local.get $q) (local.get $down)) (local.get $d))) (i32.const 2))))
                    (i32.store (local.get $at) (i32.add (i32.load (local.get $at)) (i32.const 1)))))
                    (if (local.get $hasUp)
                      (then
                    (local.set $at (i32.add (local.get $row) (i32.shl (i32.load8_u (i32.add (i32.sub (local.get $q) (local.get $down)) (local.get $d))) (i32.const 2))))
                    (i32.store (local.get $at) (i32.add (i32.load (local.get $at)) (i32.const 1)))))))))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (local.set $q (i32.add (local.get $q) (i32.const 1)))
            (br $pixels)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows))))

  ;; Local binary patterns of the cell's pixels at radius $r (8 neighbours on the square, in order around
  ;; it), classed by the 256 bytes at $classes (2 flat, 1 uniform, 0 other). Stores at $out three i32:
  ;; the uniform ones (flat included), the flat ones, and how many were classed.
  (func (export "localBinaryPatterns")
    (param $luma i32) (param $levels i32) (param $bw i32) (param $bh i32) (param $r i32)
    (param $classes i32) (param $out i32)
    (local $y i32) (local $x i32) (local $q i32) (local $at i32) (local $centre f64) (local $pattern i32)
    (local $kind i32) (local $uniform i32) (local $flat i32) (local $counted i32)
    (local $o0 i32) (local $o1 i32) (local $o2 i32) (local $o3 i32)
    (local $o4 i32) (local $o5 i32) (local $o6 i32) (local $o7 i32)
    ;; Neighbour offsets in bytes of luma: left, up-left, up, up-right, right, down-right, down, down-left.
    (local.set $o2 (i32.mul (i32.mul (local.get $r) (local.get $bw)) (i32.const -8)))
    (local.set $o0 (i32.mul (local.get $r) (i32.const -8)))
    (local.set $o1 (i32.add (local.get $o2) (local.get $o0)))
    (local.set $o3 (i32.sub (local.get $o2) (local.get $o0)))
    (local.set $o4 (i32.sub (i32.const 0) (local.get $o0)))
    (local.set $o6 (i32.sub (i32.const 0) (local.get $o2)))
    (local.set $o5 (i32.add (local.get $o6) (local.get $o4)))
    (local.set $o7 (i32.add (local.get $o6) (local.get $o0)))
    (local.set $y (local.get $r))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_s (local.get $y) (i32.sub (local.get $bh) (local.get $r))))
        (local.set $x (local.get $r))
        (local.set $q (i32.add (i32.mul (local.get $y) (local.get $bw)) (local.get $r)))
        (block $pixelsDone
          (loop $pixels
            (br_if $pixelsDone (i32.ge_s (local.get $x) (i32.sub (local.get $bw) (local.get $r))))
            (if (i32.ne (i32.load8_u (i32.add (local.get $levels) (local.get $q))) (i32.const 255))
              (then
                (local.set $at (i32.add (local.get $luma) (i32.shl (local.get $q) (i32.const 3))))
                (local.set $centre (f64.load (local.get $at)))
                (local.set $pattern
                  (i32.or (i32.or (i32.or
                    (f64.ge (f64.load (i32.add (local.get $at) (local.get $o0))) (local.get $centre))
                    (i32.shl (f64.ge (f64.load (i32.add (local.get $at) (local.get $o1))) (local.get $centre)) (i32.const 1)))
                    (i32.or
                      (i32.shl (f64.ge (f64.load (i32.add (local.get $at) (local.get $o2))) (local.get $centre)) (i32.const 2))
                      (i32.shl (f64.ge (f64.load (i32.add (local.get $at) (local.get $o3))) (local.get $centre)) (i32.const 3))))
                    (i32.or (i32.or
                      (i32.shl (f64.ge (f64.load (i32.add (local.get $at) (local.get $o4))) (local.get $centre)) (i32.const 4))
                      (i32.shl (f64.ge (f64.load (i32.add (local.get $at) (local.get $o5))) (local.get $centre)) (i32.const 5)))
                    (i32.or
                      (i32.shl (f64.ge (f64.load (i32.add (local.get $at) (local.get $o6))) (local.get $centre)) (i32.const 6))
                      (i32.shl (f64.ge (f64.load (i32.add (local.get $at) (local.get $o7))) (local.get $centre)) (i32.const 7))))))
                (local.set $kind (i32.load8_u (i32.add (local.get $classes) (local.get $pattern))))
                (local.set $counted (i32.add (local.get $counted) (i32.const 1)))
                (local.set $uniform (i32.add (local.get $uniform) (i32.ne (local.get $kind) (i32.const 0))))
                (local.set $flat (i32.add (local.get $flat) (i32.eq (local.get $kind) (i32.const 2))))))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (local.set $q (i32.add (local.get $q) (i32.const 1)))
            (br $pixels)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows)))
    (i32.store (local.get $out) (local.get $uniform))
    (i32.store offset=4 (local.get $out) (local.get $flat))
    (i32.store offset=8 (local.get $out) (local.get $counted))))
