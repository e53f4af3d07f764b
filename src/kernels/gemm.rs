//! f32 matrix products on slices, for the CPU kernels: the `gemm` crate (candle's own CPU
//! matmul, with its AVX-512 kernels enabled) called with explicit strides, so transposed
//! operands, column blocks of a wider matrix and accumulation into an existing result cost no
//! copies and no allocation.
//!
//! The views check at construction that every element they address lies inside their slice,
//! which is what makes the raw-pointer call below sound.

/// A read-only matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// A writable row-major matrix view: element (i, j) is `data[i * rs + j]`.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    rs: usize,
}

/// Whether a product overwrites its destination or adds to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    Overwrite,
    Accumulate,
}

/// Threads for one product: all of rayon's (the big products of a step) or the calling thread
/// only (many small products already spread over threads by the caller, e.g. one per head).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    All,
    One,
}

/// Panics unless every element of a (rows, cols, rs, cs) view lies in `len` elements.
fn check_extent(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) {
    if rows > 0 && cols > 0 {
        let last = (rows - 1) * rs + (cols - 1) * cs;
        assert!(
            last < len,
            "matrix view {rows}x{cols} (strides {rs}, {cs}) exceeds its {len} elements"
        );
    }
}

impl<'a> MatRef<'a> {
    /// `rows x cols`, row `i` starting at `i * rs` (rs >= cols: a column block of a wider
    /// row-major matrix when rs > cols).
    pub fn rows(data: &'a [f32], rows: usize, cols: usize, rs: usize) -> Self {
        Self::strided(data, rows, cols, rs, 1)
    }

    /// A contiguous row-major `rows x cols` matrix.
    pub fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::rows(data, rows, cols, cols)
    }

    fn strided(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        check_extent(data.len(), rows, cols, rs, cs);
        Self {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

impl<'a> MatMut<'a> {
    /// `rows x cols`, row `i` starting at `i * rs`.
    pub fn rows(data: &'a mut [f32], rows: usize, cols: usize, rs: usize) -> Self {
        check_extent(data.len(), rows, cols, rs, 1);
        // Overlapping rows would have two threads of one product write the same element.
        assert!(
            rows <= 1 || rs >= cols,
            "matrix rows of {cols} overlap at stride {rs}"
        );
        Self {
            data,
            rows,
            cols,
            rs,
        }
    }

    /// A contiguous row-major `rows x cols` matrix.
    pub fn dense(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::rows(data, rows, cols, cols)
    }
}

/// `dst (=|+=) a · b`. Panics when the shapes do not chain (a programming error: every caller
/// derives them from one validated set of dimensions).
pub fn matmul(dst: MatMut<'_>, a: MatRef<'_>, b: MatRef<'_>, write: Write, threads: Threads) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        b.rows == k && dst.rows == m && dst.cols == n,
        "matmul shapes: {}x{} · {}x{} into {}x{}",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        dst.rows,
        dst.cols
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if write == Write::Overwrite {
            for i in 0..m {
                dst.data[i * dst.rs..i * dst.rs + n].fill(0.0);
            }
        }
        return;
    }
    let parallelism = match threads {
        Threads::All => match candle_core::utils::get_num_threads() {
            0 | 1 => gemm::Parallelism::None,
            t => gemm::Parallelism::Rayon(t),
        },
        Threads::One => gemm::Parallelism::None,
    };
    let accumulate = write == Write::Accumulate;
    // SAFETY: the constructors checked that every element each view addresses is inside its
    // slice and that dst's rows do not overlap; the shapes chain (asserted above); `dst` is a
    // unique borrow, so it cannot alias `a` or `b`. With read_dst = false gemm writes dst
    // without reading it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            1,
            dst.rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn transposes_column_blocks_and_accumulation() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 11) as f32 - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.5).collect();
        let want = naive(&a, &b, m, k, n);
        let mut c = vec![0f32; m * n];
        matmul(
            MatMut::dense(&mut c, m, n),
            MatRef::dense(&a, m, k),
            MatRef::dense(&b, k, n),
            Write::Overwrite,
            Threads::All,
        );
        assert_eq!(c, want);
        // bᵀ stored [n, k], read through a transposed view; accumulate onto the first result.
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        matmul(
            MatMut::dense(&mut c, m, n),
            MatRef::dense(&a, m, k),
            MatRef::dense(&bt, n, k).t(),
            Write::Accumulate,
            Threads::One,
        );
        assert!(c.iter().zip(&want).all(|(x, w)| *x == 2.0 * w));
        // A column block: columns 1..4 of a [m, 6] destination.
        let mut wide = vec![9f32; m * 6];
        matmul(
            MatMut::rows(&mut wide[1..], m, n, 6),
            MatRef::dense(&a, m, k),
            MatRef::dense(&b, k, n),
            Write::Overwrite,
            Threads::All,
        );
        for i in 0..m {
            assert_eq!(wide[i * 6], 9.0);
            assert_eq!(&wide[i * 6 + 1..i * 6 + 4], &want[i * n..(i + 1) * n]);
            assert_eq!(&wide[i * 6 + 4..i * 6 + 6], &[9.0, 9.0]);
        }
    }

    #[test]
    #[should_panic(expected = "exceeds")]
    fn views_outside_their_slice_are_refused() {
        let data = [0f32; 10];
        MatRef::rows(&data, 3, 3, 4);
    }
}
