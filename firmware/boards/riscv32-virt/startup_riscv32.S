/* riscv32-virt startup: QEMU `-M virt -bios none` jumps here (0x80000000) in machine mode.
 * Sets up gp and sp, copies .data, zeroes .bss, runs main and passes its result to ta_hal_exit.
 * Any trap ends the program with exit code 99 (a crash is a failed run, not a hang). */
    .section .text.start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, __stack_top

    .option push
    .option arch, +zicsr      /* csrw is Zicsr; the rv32imac multilib's -march does not name it */
    la t0, ta_rv_trap
    csrw mtvec, t0
    .option pop

    la t0, __data_load
    la t1, __data_start
    la t2, __data_end
1:  bgeu t1, t2, 2f
    lw t3, 0(t0)
    sw t3, 0(t1)
    addi t0, t0, 4
    addi t1, t1, 4
    j 1b
2:  la t1, __bss_start
    la t2, __bss_end
3:  bgeu t1, t2, 4f
    sw zero, 0(t1)
    addi t1, t1, 4
    j 3b
4:  call main
    call ta_hal_exit
5:  j 5b

    .align 2
ta_rv_trap:
    li a0, 99
    call ta_hal_exit
6:  j 6b
