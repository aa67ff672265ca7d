;; The pass over the pixels of src/ml/image/foreground.ts (findForeground): the foreground mask, its runs
;; and the image's counts. `npm run build:wasm` assembles this file into kernels.generated.ts; a test fails
;; when the two differ.
;;
;; A pixel is foreground when some channel differs from the background colour by more than $level. Runs are
;; maximal stretches of foreground in one row, stored in raster order as three i32 each: row, first column,
;; one past the last column. With a black background ($black = 1), four black pixels (three zero words, at a
;; pixel index that is a multiple of 4) are passed at once: they are background, never clipped, never the
;; brightest, so the mask, runs and counts are those of the pixel-by-pixel pass (test/ml/image/foreground.test.ts).
;;
;; Memory, laid out by the caller (src/ml/image/foreground.ts): the RGB pixels at $data (on a 16-byte
;; boundary), the mask at $mask (width x height bytes, zeroed by the caller), room for $capacity runs at
;; $runs, and three i32 at $counts for the foreground pixels, the clipped pixels and the brightest value.
(module
  (import "env" "memory" (memory 1))
  ;; Stores run $count (row $y, columns $start to $end) at $runs; answers $count + 1, or -1 when $capacity
  ;; runs are already stored. Called once a run, a few hundred times an image.
  (func $pushRun
    (param $runs i32) (param $count i32) (param $capacity i32) (param $y i32) (param $start i32) (param $end i32)
    (result i32)
    (local $at i32)
    (if (i32.ge_s (local.get $count) (local.get $capacity)) (then (return (i32.const -1))))
    (local.set $at (i32.add (local.get $runs) (i32.mul (local.get $count) (i32.const 12))))
    (i32.store (local.get $at) (local.get $y))
    (i32.store offset=4 (local.get $at) (local.get $start))
    (i32.store offset=8 (local.get $at) (local.get $end))
    (i32.add (local.get $count) (i32.const 1)))

  ;; Answers the number of runs, or -1 when they do not fit in $capacity (the caller gives more room).
  (func (export "scanPixels")
    (param $data i32) (param $width i32) (param $height i32)
    (param $br i32) (param $bg i32) (param $bb i32) (param $level i32) (param $black i32)
    (param $mask i32) (param $runs i32) (param $capacity i32) (param $counts i32)
    (result i32)
    (local $y i32) (local $x i32) (local $p i32) (local $i i32) (local $open i32) (local $count i32)
    (local $r i32) (local $g i32) (local $b i32)
    (local $foreground i32) (local $clipped i32) (local $brightest i32)
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_s (local.get $y) (local.get $height)))
        (local.set $open (i32.const -1))
        (local.set $x (i32.const 0))
        (block $pixelsDone
          (loop $pixels
            (br_if $pixelsDone (i32.ge_s (local.get $x) (local.get $width)))
            (if (i32.and
                  (i32.and (local.get $black) (i32.eqz (i32.and (local.get $p) (i32.const 3))))
                  (i32.and
                    (i32.le_s (i32.add (local.get $x) (i32.const 4)) (local.get $width))
                    (i64.eqz (i64.or
                      (i64.load (i32.add (local.get $data) (local.get $i)))
                      (i64.extend_i32_u (i32.load offset=8 (i32.add (local.get $data) (local.get $i))))))))
              (then
                ;; Four black pixels: a run open before them ends here.
                (if (i32.ge_s (local.get $open) (i32.const 0))
                  (then
                    (local.set $count (call $pushRun (local.get $runs) (local.get $count) (local.get $capacity)
                      (local.get $y) (local.get $open) (local.get $x)))
                    (if (i32.lt_s (local.get $count) (i32.const 0)) (then (return (i32.const -1))))
                    (local.set $open (i32.const -1))))
                (local.set $x (i32.add (local.get $x) (i32.const 4)))
                (local.set $p (i32.add (local.get $p) (i32.const 4)))
                (local.set $i (i32.add (local.get $i) (i32.const 12)))
                (br $pixels)))
            (local.set $r (i32.load8_u (i32.add (local.get $data) (local.get $i))))
            (local.set $g (i32.load8_u offset=1 (i32.add (local.get $data) (local.get $i))))
            (local.set $b (i32.load8_u offset=2 (i32.add (local.get $data) (local.get $i))))
            (if (i32.or (i32.or (i32.eq (local.get $r) (i32.const 255)) (i32.eq (local.get $g) (i32.const 255)))
                        (i32.eq (local.get $b) (i32.const 255)))
              (then (local.set $clipped (i32.add (local.get $clipped) (i32.const 1)))))
            (if (i32.gt_u (local.get $r) (local.get $brightest)) (then (local.set $brightest (local.get $r))))
            (if (i32.gt_u (local.get $g) (local.get $brightest)) (then (local.set $brightest (local.get $g))))
            (if (i32.gt_u (local.get $b) (local.get $brightest)) (then (local.set $brightest (local.get $b))))
            ;; |v - background| > level, for each channel: v - background > level or background - v > level.
            (if (i32.or
                  (i32.or
                    (i32.or (i32.gt_s (i32.sub (local.get $r) (local.get $br)) (local.get $level))
                            (i32.gt_s (i32.sub (local.get $br) (local.get $r)) (local.get $level)))
                    (i32.or (i32.gt_s (i32.sub (local.get $g) (local.get $bg)) (local.get $level))
                            (i32.gt_s (i32.sub (local.get $bg) (local.get $g)) (local.get $level))))
                  (i32.or (i32.gt_s (i32.sub (local.get $b) (local.get $bb)) (local.get $level))
                          (i32.gt_s (i32.sub (local.get $bb) (local.get $b)) (local.get $level))))
              (then
                (i32.store8 (i32.add (local.get $mask) (local.get $p)) (i32.const 1))
                (local.set $foreground (i32.add (local.get $foreground) (i32.const 1)))
                (if (i32.lt_s (local.get $open) (i32.const 0)) (then (local.set $open (local.get $x)))))
              (else
                (if (i32.ge_s (local.get $open) (i32.const 0))
                  (then
                    (local.set $count (call $pushRun (local.get $runs) (local.get $count) (local.get $capacity)
                      (local.get $y) (local.get $open) (local.get $x)))
                    (if (i32.lt_s (local.get $count) (i32.const 0)) (then (return (i32.const -1))))
                    (local.set $open (i32.const -1))))))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (local.set $i (i32.add (local.get $i) (i32.const 3)))
            (br $pixels)))
        ;; A run that reaches the row's end.
        (if (i32.ge_s (local.get $open) (i32.const 0))
          (then
            (local.set $count (call $pushRun (local.get $runs) (local.get $count) (local.get $capacity)
              (local.get $y) (local.get $open) (local.get $width)))
            (if (i32.lt_s (local.get $count) (i32.const 0)) (then (return (i32.const -1))))))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows)))
    (i32.store (local.get $counts) (local.get $foreground))
    (i32.store offset=4 (local.get $counts) (local.get $clipped))
    (i32.store offset=8 (local.get $counts) (local.get $brightest))
    (local.get $count)))
