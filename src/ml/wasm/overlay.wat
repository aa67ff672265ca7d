;; The heat map's overlay as PNG scanlines (src/ml/explanation/heatmap.ts, drawOverlay), for a band of
;; image rows. `npm run build:wasm` assembles this file into kernels.generated.ts; a test fails when the two
;; differ.
;;
;; The arithmetic is drawOverlay's JavaScript one, in the same order and in float64, so every pixel is the
;; one the per-pixel formula gives (test/ml/explanation/heatmap.test.ts). What is faster than JavaScript:
;; the red and green channels share one f64x2 operation (blue takes the other), the colour scale comes with
;; each stop's difference to the next, and the Sub filter runs 16 bytes at a time after the row is drawn.
;;
;; Memory, all laid out by the caller (src/ml/wasm/overlay.ts):
;;   jet      per stop of the scale, 64 bytes: f64 red, green, blue, 0, then the next stop minus this one
;;   bright   256 f64: a channel value brightened (min(255, v * gain))
;;   plain    256 u8: the same, rounded (a pixel without heat)
;;   colLo, colUp (i32), colW (f64): per image column, the heat map columns around it and the upper's weight
;;   rowLo, rowUp (i32), rowW (f64): the same per image row, indexed by the row's number in the image
;;   heat     the heat map, hs x hs f32
;;   line     hs f64, scratch: the map interpolated between the two map rows around an image row
;;   pix      the band's RGB pixels, from row y0
;;   out      the band's scanlines, from row y0: a filter byte (1, Sub), then width x 3 filtered bytes
(module
  (import "env" "memory" (memory 1))
  (func (export "overlay")
    (param $width i32) (param $y0 i32) (param $y1 i32) (param $hs i32)
    (param $pix i32) (param $out i32) (param $heat i32) (param $line i32)
    (param $colLo i32) (param $colUp i32) (param $colW i32)
    (param $rowLo i32) (param $rowUp i32) (param $rowW i32)
    (param $bright i32) (param $plain i32) (param $jet i32) (param $stops i32)
    (local $y i32) (local $x i32) (local $j i32) (local $top i32) (local $bottom i32)
    (local $fy f64) (local $v f64) (local $hot i32)
    (local $i i32) (local $o i32) (local $rowBytes i32) (local $stride i32)
    (local $h f64) (local $fx f64) (local $alpha f64) (local $ia f64) (local $pos f64) (local $stop f64)
    (local $f f64) (local $k i32) (local $lastStop f64) (local $fstops f64)
    (local $va v128) (local $vi v128) (local $vf v128) (local $rg v128) (local $b v128)
    (local.set $rowBytes (i32.mul (local.get $width) (i32.const 3)))
    (local.set $stride (i32.add (local.get $rowBytes) (i32.const 1)))
    (local.set $fstops (f64.convert_i32_s (local.get $stops)))
    (local.set $lastStop (f64.convert_i32_s (i32.sub (local.get $stops) (i32.const 1))))
    (local.set $y (local.get $y0))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_s (local.get $y) (local.get $y1)))
        ;; The map between its two rows around this image row; a row of zeros is drawn without heat.
        (local.set $top (i32.mul (i32.load (i32.add (local.get $rowLo) (i32.shl (local.get $y) (i32.const 2)))) (local.get $hs)))
        (local.set $bottom (i32.mul (i32.load (i32.add (local.get $rowUp) (i32.shl (local.get $y) (i32.const 2)))) (local.get $hs)))
        (local.set $fy (f64.load (i32.add (local.get $rowW) (i32.shl (local.get $y) (i32.const 3)))))
        (local.set $hot (i32.const 0))
        (local.set $j (i32.const 0))
        (block $lineDone
          (loop $lineLoop
            (br_if $lineDone (i32.ge_s (local.get $j) (local.get $hs)))
            (local.set $v
              (f64.add
                (f64.mul
                  (f64.promote_f32 (f32.load (i32.add (local.get $heat) (i32.shl (i32.add (local.get $top) (local.get $j)) (i32.const 2)))))
                  (f64.sub (f64.const 1) (local.get $fy)))
                (f64.mul
                  (f64.promote_f32 (f32.load (i32.add (local.get $heat) (i32.shl (i32.add (local.get $bottom) (local.get $j)) (i32.const 2)))))
                  (local.get $fy))))
            (f64.store (i32.add (local.get $line) (i32.shl (local.get $j) (i32.const 3))) (local.get $v))
            (local.set $hot (i32.or (local.get $hot) (f64.ne (local.get $v) (f64.const 0))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $lineLoop)))
        (local.set $i (i32.add (local.get $pix) (i32.mul (i32.sub (local.get $y) (local.get $y0)) (local.get $rowBytes))))
        (local.set $o (i32.add (local.get $out) (i32.mul (i32.sub (local.get $y) (local.get $y0)) (local.get $stride))))
        (i32.store8 (local.get $o) (i32.const 1))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        ;; First the row as drawn (unfiltered) ...
        (if (local.get $hot)
          (then
            (local.set $x (i32.const 0))
            (block $hotDone
              (loop $hotLoop
                (br_if $hotDone (i32.ge_s (local.get $x) (local.get $width)))
                (local.set $fx (f64.load (i32.add (local.get $colW) (i32.shl (local.get $x) (i32.const 3)))))
                (local.set $h
                  (f64.add
                    (f64.mul
                      (f64.load (i32.add (local.get $line) (i32.shl (i32.load (i32.add (local.get $colLo) (i32.shl (local.get $x) (i32.const 2)))) (i32.const 3))))
                      (f64.sub (f64.const 1) (local.get $fx)))
                    (f64.mul
                      (f64.load (i32.add (local.get $line) (i32.shl (i32.load (i32.add (local.get $colUp) (i32.shl (local.get $x) (i32.const 2)))) (i32.const 3))))
                      (local.get $fx))))
                (local.set $h (select (f64.const 1) (local.get $h) (f64.gt (local.get $h) (f64.const 1))))
                (if (f64.gt (local.get $h) (f64.const 0))
                  (then
                    ;; (1 - alpha) * cell + alpha * jet(h) + 0.5, truncated, with alpha = 0.6 h.
                    (local.set $alpha (f64.mul (f64.const 0.6) (local.get $h)))
                    (local.set $ia (f64.sub (f64.const 1) (local.get $alpha)))
                    (local.set $pos (f64.mul (local.get $h) (local.get $fstops)))
                    (local.set $stop (f64.floor (local.get $pos)))
                    (local.set $stop (select (local.get $lastStop) (local.get $stop) (f64.gt (local.get $stop) (local.get $lastStop))))
                    (local.set $f (f64.sub (local.get $pos) (local.get $stop)))
                    (local.set $k (i32.add (local.get $jet) (i32.shl (i32.trunc_f64_s (local.get $stop)) (i32.const 6))))
                    (local.set $va (f64x2.splat (local.get $alpha)))
                    (local.set $vi (f64x2.splat (local.get $ia)))
                    (local.set $vf (f64x2.splat (local.get $f)))
                    (local.set $rg (i32x4.trunc_sat_f64x2_s_zero (f64x2.add (f64x2.add
                      (f64x2.mul (local.get $vi) (f64x2.replace_lane 1
                        (f64x2.splat (f64.load (i32.add (local.get $bright) (i32.shl (i32.load8_u (local.get $i)) (i32.const 3)))))
                        (f64.load (i32.add (local.get $bright) (i32.shl (i32.load8_u offset=1 (local.get $i)) (i32.const 3))))))
                      (f64x2.mul (local.get $va) (f64x2.add (v128.load (local.get $k)) (f64x2.mul (v128.load offset=32 (local.get $k)) (local.get $vf)))))
                      (v128.const f64x2 0.5 0.5))))
                    (local.set $b (i32x4.trunc_sat_f64x2_s_zero (f64x2.add (f64x2.add
                      (f64x2.mul (local.get $vi) (f64x2.splat (f64.load (i32.add (local.get $bright) (i32.shl (i32.load8_u offset=2 (local.get $i)) (i32.const 3))))))
                      (f64x2.mul (local.get $va) (f64x2.add (v128.load offset=16 (local.get $k)) (f64x2.mul (v128.load offset=48 (local.get $k)) (local.get $vf)))))
                      (v128.const f64x2 0.5 0.5))))
                    (i32.store8 (local.get $o) (i32x4.extract_lane 0 (local.get $rg)))
                    (i32.store8 offset=1 (local.get $o) (i32x4.extract_lane 1 (local.get $rg)))
                    (i32.store8 offset=2 (local.get $o) (i32x4.extract_lane 0 (local.get $b))))
                  (else
                    ;; No heat here (or none that is a number): the brightened cell alone.
                    (i32.store8 (local.get $o) (i32.load8_u (i32.add (local.get $plain) (i32.load8_u (local.get $i)))))
                    (i32.store8 offset=1 (local.get $o) (i32.load8_u (i32.add (local.get $plain) (i32.load8_u offset=1 (local.get $i)))))
                    (i32.store8 offset=2 (local.get $o) (i32.load8_u (i32.add (local.get $plain) (i32.load8_u offset=2 (local.get $i)))))))
                (local.set $i (i32.add (local.get $i) (i32.const 3)))
                (local.set $o (i32.add (local.get $o) (i32.const 3)))
                (local.set $x (i32.add (local.get $x) (i32.const 1)))
                (br $hotLoop))))
          (else
            ;; A row without heat: a table lookup per byte.
            (local.set $j (i32.add (local.get $i) (local.get $rowBytes)))
            (block $coldDone
              (loop $coldLoop
                (br_if $coldDone (i32.ge_u (local.get $i) (local.get $j)))
                (i32.store8 (local.get $o) (i32.load8_u (i32.add (local.get $plain) (i32.load8_u (local.get $i)))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (local.set $o (i32.add (local.get $o) (i32.const 1)))
                (br $coldLoop)))))
        ;; ... then PNG's Sub filter in place, from the row's end backward so that every byte is taken
        ;; from the one 3 before it as drawn: 16 bytes at a time, then the few left after the first 3.
        (local.set $o (i32.add (i32.add (local.get $out) (i32.mul (i32.sub (local.get $y) (local.get $y0)) (local.get $stride))) (i32.const 1)))
        (local.set $x (i32.sub (local.get $rowBytes) (i32.const 16)))
        (block $subDone
          (loop $subLoop
            (br_if $subDone (i32.lt_s (local.get $x) (i32.const 3)))
            (v128.store (i32.add (local.get $o) (local.get $x))
              (i8x16.sub (v128.load (i32.add (local.get $o) (local.get $x)))
                         (v128.load (i32.sub (i32.add (local.get $o) (local.get $x)) (i32.const 3)))))
            (local.set $x (i32.sub (local.get $x) (i32.const 16)))
            (br $subLoop)))
        (local.set $x (i32.add (local.get $x) (i32.const 15)))
        (block $headDone
          (loop $headLoop
            (br_if $headDone (i32.lt_s (local.get $x) (i32.const 3)))
            (i32.store8 (i32.add (local.get $o) (local.get $x))
              (i32.sub (i32.load8_u (i32.add (local.get $o) (local.get $x)))
                       (i32.load8_u (i32.sub (i32.add (local.get $o) (local.get $x)) (i32.const 3)))))
            (local.set $x (i32.sub (local.get $x) (i32.const 1)))
            (br $headLoop)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows)))))
