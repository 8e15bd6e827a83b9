/* oftawq_jni.c: a minimal JNI wrapper - open an AWQ module with one OFT adapter, run it on float rows, close it. */
#include <jni.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <oftawq.h>

/* What a Java handle (a long) points to. */
typedef struct jni_layer {
  oftawq_context *ctx;
  oftawq_layer *layer;
  int K, N;
} jni_layer;

static void throw_error(JNIEnv *env, const char *what, const char *detail)
{
  char message[1024];
  jclass cls = (*env)->FindClass(env, "java/lang/IllegalStateException");
  snprintf(message, sizeof message, "oftawq: %s%s%s", what, detail && *detail ? ": " : "", detail ? detail : "");
  if (cls) (*env)->ThrowNew(env, cls, message);
}

/* Context creation reports why it failed (no OpenCL library, no device) to the log callback. */
static void keep_error(void *user, oftawq_log_level level, const char *message)
{
  if (level == OFTAWQ_LOG_ERROR) snprintf((char *)user, 512, "%s", message);
}

static void close_layer(jni_layer *h)
{
  if (!h) return;
  oftawq_layer_destroy(h->layer);
  oftawq_context_destroy(h->ctx);
  free(h);
}

/* OftawqLayer.nativeVersion(): the library's version string. */
JNIEXPORT jstring JNICALL Java_org_oftawq_example_OftawqLayer_nativeVersion(JNIEnv *env, jclass cls)
{
  (void)cls;
  return (*env)->NewStringUTF(env, oftawq_version_string());
}

/* OftawqLayer.nativeOpen(cacheDir, modelDir, module, adapterDir): a handle, or 0 after throwing. */
JNIEXPORT jlong JNICALL Java_org_oftawq_example_OftawqLayer_nativeOpen(JNIEnv *env, jclass cls, jstring cache_dir,
                                                                       jstring model_dir, jstring module,
                                                                       jstring adapter_dir)
{
  const char *cache = NULL, *model = NULL, *mod = NULL, *adapter = NULL;
  char why[512] = "";
  oftawq_context_options opt;
  oftawq_status status;
  int G = 0, has_bias = 0;
  jni_layer *h = calloc(1, sizeof *h);
  (void)cls;
  if (!h) {
    throw_error(env, "out of memory", NULL);
    return 0;
  }
  if (cache_dir) cache = (*env)->GetStringUTFChars(env, cache_dir, NULL);
  if (model_dir) model = (*env)->GetStringUTFChars(env, model_dir, NULL);
  if (module) mod = (*env)->GetStringUTFChars(env, module, NULL);
  if (adapter_dir) adapter = (*env)->GetStringUTFChars(env, adapter_dir, NULL);

  oftawq_context_options_init(&opt);
  opt.cache_dir = cache; /* the app's Context.getCodeCacheDir(): compiled kernels and tuning */
  opt.log = keep_error;
  opt.log_user = why;
  status = oftawq_context_create(&opt, &h->ctx);
  if (status != OFTAWQ_OK) {
    throw_error(env, oftawq_status_message(status), why);
  } else if ((status = oftawq_layer_load(h->ctx, model, mod, adapter ? &adapter : NULL, NULL, adapter ? 1 : 0,
                                         &h->layer)) != OFTAWQ_OK) {
    throw_error(env, oftawq_status_message(status), oftawq_context_last_error(h->ctx));
  } else if ((status = oftawq_awq_get_shape(oftawq_layer_base(h->layer), &h->K, &h->N, &G, &has_bias)) != OFTAWQ_OK) {
    throw_error(env, oftawq_status_message(status), oftawq_context_last_error(h->ctx));
  }

  if (adapter) (*env)->ReleaseStringUTFChars(env, adapter_dir, adapter);
  if (mod) (*env)->ReleaseStringUTFChars(env, module, mod);
  if (model) (*env)->ReleaseStringUTFChars(env, model_dir, model);
  if (cache) (*env)->ReleaseStringUTFChars(env, cache_dir, cache);
  if (status != OFTAWQ_OK) {
    close_layer(h);
    return 0;
  }
  return (jlong)(intptr_t)h;
}

/* OftawqLayer.nativeForward(handle, x): x holds rows of K floats; returns rows of N floats, or null after throwing. */
JNIEXPORT jfloatArray JNICALL Java_org_oftawq_example_OftawqLayer_nativeForward(JNIEnv *env, jclass cls, jlong handle,
                                                                                jfloatArray x)
{
  jni_layer *h = (jni_layer *)(intptr_t)handle;
  jsize length;
  size_t rows;
  jfloat *in;
  float *out;
  jfloatArray y = NULL;
  oftawq_status status;
  (void)cls;
  if (!h || !x) {
    throw_error(env, "closed layer or null input", NULL);
    return NULL;
  }
  length = (*env)->GetArrayLength(env, x);
  if (length == 0 || length % h->K != 0) {
    throw_error(env, "the input length is not a multiple of the layer's in_features", NULL);
    return NULL;
  }
  rows = (size_t)length / (size_t)h->K;
  if (rows > (size_t)INT32_MAX / (size_t)h->N || !(out = malloc(rows * (size_t)h->N * sizeof *out))) {
    throw_error(env, "out of memory", NULL);
    return NULL;
  }
  in = (*env)->GetFloatArrayElements(env, x, NULL);
  status = in ? oftawq_layer_forward(h->layer, OFTAWQ_F32, in, out, rows) : OFTAWQ_E_OUT_OF_MEMORY;
  if (in) (*env)->ReleaseFloatArrayElements(env, x, in, JNI_ABORT);
  if (status != OFTAWQ_OK) {
    throw_error(env, oftawq_status_message(status), oftawq_context_last_error(h->ctx));
  } else if ((y = (*env)->NewFloatArray(env, (jsize)(rows * (size_t)h->N))) != NULL) {
    (*env)->SetFloatArrayRegion(env, y, 0, (jsize)(rows * (size_t)h->N), out);
  }
  free(out);
  return y;
}

/* OftawqLayer.nativeClose(handle): releases the layer and its context; 0 is a no-op. */
JNIEXPORT void JNICALL Java_org_oftawq_example_OftawqLayer_nativeClose(JNIEnv *env, jclass cls, jlong handle)
{
  (void)env;
  (void)cls;
  close_layer((jni_layer *)(intptr_t)handle);
}
