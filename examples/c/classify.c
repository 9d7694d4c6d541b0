/*
 * classify: the skin-lesion CNN on camera images, through libmedinfer's C API.
 *
 *   classify MODEL.onnx IMAGE.ppm [IMAGE.ppm ...]
 *
 * Reads binary PPM (P6) images of any size, hands the raw RGB bytes to
 * medinfer_classify_image (which resizes and rescales exactly where the model does not
 * do it itself) and prints the class probabilities with the labels stored in the model.
 * Exit status: 0 on success, 1 on any error (with the library's message).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "medinfer.h"

static int fail(const char *what, int status) {
  fprintf(stderr, "classify: %s: %s: %s\n", what, medinfer_status_name(status), medinfer_last_error());
  return 1;
}

/* Reads a P6 PPM with maxval 255; returns malloc'ed RGB bytes or NULL. */
static unsigned char *read_ppm(const char *path, size_t *width, size_t *height) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char magic[3] = {0};
  unsigned long w = 0, h = 0, maxval = 0;
  unsigned char *pixels = NULL;
  if (fscanf(f, "%2s %lu %lu %lu", magic, &w, &h, &maxval) == 4 && strcmp(magic, "P6") == 0 &&
      maxval == 255 && w > 0 && h > 0 && w <= 65536 && h <= 65536 && fgetc(f) != EOF) {
    pixels = malloc(w * h * 3);
    if (pixels && fread(pixels, 1, w * h * 3, f) != w * h * 3) {
      free(pixels);
      pixels = NULL;
    }
  }
  fclose(f);
  *width = w;
  *height = h;
  return pixels;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.onnx IMAGE.ppm [IMAGE.ppm ...]\n", argv[0]);
    return 1;
  }
  medinfer_model *model = NULL;
  int status = medinfer_model_load(argv[1], &model);
  if (status != MEDINFER_OK) return fail(argv[1], status);
  medinfer_session *session = NULL;
  status = medinfer_session_create(model, &session);
  if (status != MEDINFER_OK) {
    medinfer_model_free(model);
    return fail("medinfer_session_create", status);
  }
  size_t labels = 0;
  medinfer_model_class_count(model, &labels);
  printf("%s: %zu classes\n", argv[1], labels);
  printf("%-32s %9s", "image", "ms");
  for (size_t k = 0; k < labels; k++) {
    const char *label = NULL;
    medinfer_model_class_label(model, k, &label);
    printf(" %7s", label);
  }
  printf("  predicted\n");
  int result = 0;
  for (int i = 2; i < argc && result == 0; i++) {
    size_t width = 0, height = 0;
    unsigned char *pixels = read_ppm(argv[i], &width, &height);
    if (!pixels) {
      fprintf(stderr, "classify: %s: not a readable binary PPM (P6, maxval 255)\n", argv[i]);
      result = 1;
      break;
    }
    medinfer_image image = {sizeof(medinfer_image), pixels, width, height, width * 3, MEDINFER_PIXELS_RGB, 0};
    float probabilities[64];
    size_t count = 0;
    double start = now_ms();
    status = medinfer_classify_image(session, &image, probabilities, 64, &count);
    double elapsed = now_ms() - start;
    if (status != MEDINFER_OK) {
      result = fail(argv[i], status);
    } else {
      const char *name = strrchr(argv[i], '/');
      printf("%-32s %9.2f", name ? name + 1 : argv[i], elapsed);
      size_t best = 0;
      for (size_t k = 0; k < count; k++) {
        printf(" %7.4f", probabilities[k]);
        if (probabilities[k] > probabilities[best]) best = k;
      }
      const char *label = NULL;
      if (medinfer_model_class_label(model, best, &label) != MEDINFER_OK) label = "?";
      printf("  %s\n", label);
    }
    free(pixels);
  }
  medinfer_session_free(session);
  medinfer_model_free(model);
  return result;
}
