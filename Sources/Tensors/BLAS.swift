import COpenBLAS

/// OpenBLAS thread control. The worker runs N lanes, each calling BLAS single-threaded.
public enum BLAS {
    /// Sets the number of threads OpenBLAS uses for one call (process-wide).
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
    public static var threads: Int { Int(openblas_get_num_threads()) }
}
