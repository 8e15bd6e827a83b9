// OftawqLayer.java: the Java side of oftawq_jni.c - one AWQ module with one OFT adapter, run on float rows.
package org.oftawq.example;

public final class OftawqLayer implements AutoCloseable {
  static {
    System.loadLibrary("oftawq_jni"); // loads liboftawq.so first, as its dependency
  }

  private long handle;

  /**
   * @param cacheDir   context.getCodeCacheDir().getPath(): compiled kernels and tuning results
   * @param modelDir   an AWQ model folder (config.json + *.safetensors)
   * @param module     e.g. "model.layers.0.self_attn.q_proj"
   * @param adapterDir a PEFT OFT adapter folder, or null for the base layer alone
   * @throws IllegalStateException with the library's reason (no OpenCL device, bad files, ...)
   */
  public OftawqLayer(String cacheDir, String modelDir, String module, String adapterDir) {
    handle = nativeOpen(cacheDir, modelDir, module, adapterDir);
  }

  /** x: rows of in_features floats; returns rows of out_features floats. */
  public float[] forward(float[] x) {
    return nativeForward(handle, x);
  }

  @Override
  public void close() {
    nativeClose(handle);
    handle = 0;
  }

  public static String version() {
    return nativeVersion();
  }

  private static native String nativeVersion();
  private static native long nativeOpen(String cacheDir, String modelDir, String module, String adapterDir);
  private static native float[] nativeForward(long handle, float[] x);
  private static native void nativeClose(long handle);
}
