// The arch timer's counter offsets: arch/arm64/kvm/arch_timer.c (and guest.c's timer-register
// routing), in three forms: before 6.4 (per-vCPU CNTVOFF written on all vCPUs at once, no physical
// offset), 6.4+ (VM-wide voffset/poffset, KVM_ARM_SET_COUNTER_OFFSET), and Oliver Upton's unmerged
// 2021 series v8 (KVM_REG_ARM_TIMER_OFFSET, KVM_ARM_VCPU_TIMER_PHYS_OFFSET) on a 5.15 base.
import { ARM64_REGS, ATTRS, type Arm64RegName } from '../uapi.js';
import { u64, U32_MASK } from '../u64.js';
import { arm64CounterModel, type Arm64Ctx, type Arm64Vcpu, type Arm64Vm } from './state.js';

export type TimerId = 'vtimer' | 'ptimer';
/** enum kvm_arch_timer_regs, as far as userspace reaches it (TIMER_REG_OFFSET is the v8 series') */
export type TimerRegKind = 'ctl' | 'cnt' | 'cval' | 'offset';
export interface TimerReg {
  name: Arm64RegName;
  timer: TimerId;
  reg: TimerRegKind;
}

/** ARCH_TIMER_CTRL_IT_STAT: ISTATUS, computed on read, never stored */
export const ARCH_TIMER_CTRL_IT_STAT = 1n << 2n;
/** default_vtimer_irq / default_ptimer_irq (PPIs 27 and 30) */
export const DEFAULT_VTIMER_IRQ = 27n;
export const DEFAULT_PTIMER_IRQ = 30n;
/** KVM_ARM_VCPU_TIMER_IRQ_VTIMER / _PTIMER (group KVM_ARM_VCPU_TIMER_CTRL) */
export const KVM_ARM_VCPU_TIMER_IRQ_VTIMER = 0;
export const KVM_ARM_VCPU_TIMER_IRQ_PTIMER = 1;

// guest.c is_timer_reg() is a switch on the literal UAPI constants, so the ids are routed by value,
// never decoded as sysreg encodings: TIMER_CNT (which carries CNTV_CVAL_EL0's encoding) is the
// counter and TIMER_CVAL (CNTVCT_EL0's encoding) the compare value. The 2025 sys_regs.c rework
// swaps them back before its table lookup, with the same result.
const TIMER_REGS: readonly TimerReg[] = [
  { name: 'KVM_REG_ARM_TIMER_CTL', timer: 'vtimer', reg: 'ctl' },
  { name: 'KVM_REG_ARM_TIMER_CNT', timer: 'vtimer', reg: 'cnt' },
  { name: 'KVM_REG_ARM_TIMER_CVAL', timer: 'vtimer', reg: 'cval' },
  { name: 'KVM_REG_ARM_PTIMER_CTL', timer: 'ptimer', reg: 'ctl' },
  { name: 'KVM_REG_ARM_PTIMER_CNT', timer: 'ptimer', reg: 'cnt' },
  { name: 'KVM_REG_ARM_PTIMER_CVAL', timer: 'ptimer', reg: 'cval' },
  { name: 'KVM_REG_ARM_TIMER_OFFSET', timer: 'vtimer', reg: 'offset' },
];

/** arch/arm64/kvm/arch_timer.c: kvm_phys_timer_read(): the host counter at this instant */
function kvmPhysTimerRead(ctx: Arm64Ctx): bigint {
  return ctx.hw.tsc;
}

/** arch/arm64/kvm/guest.c: is_timer_reg(): the timer registers this kernel routes to kvm_arm_timer_{get,set}_reg(), in copy_timer_indices() order */
function timerRegs(ctx: Arm64Ctx, vm: Arm64Vm): TimerReg[] {
  const model = arm64CounterModel(ctx.sw);
  return TIMER_REGS.filter((r) => {
    if (r.reg === 'offset') return model === 'v8' && vm.timerOffsetEnabled; // v8: only after the VM opted in
    if (r.timer === 'ptimer') return model === '6.4+'; // before 6.4 the PTIMER ids fell through to the sys_reg table
    return true;
  });
}

/** arch/arm64/kvm/guest.c: is_timer_reg(): the timer register a ONE_REG id names on this kernel, or null */
export function isTimerReg(ctx: Arm64Ctx, vm: Arm64Vm, id: bigint): TimerReg | null {
  return timerRegs(ctx, vm).find((r) => ARM64_REGS[r.name] === id) ?? null;
}

/** arch/arm64/kvm/guest.c: copy_timer_indices(): the timer ids KVM_GET_REG_LIST reports */
export function copyTimerIndices(ctx: Arm64Ctx, vm: Arm64Vm): bigint[] {
  return timerRegs(ctx, vm).map((r) => ARM64_REGS[r.name]);
}

/** arch/arm64/kvm/arch_timer.c: timer_get_offset(): what the hardware (or the emulation) subtracts from the host counter */
export function timerGetOffset(ctx: Arm64Ctx, vm: Arm64Vm, vcpu: Arm64Vcpu, timer: TimerId): bigint {
  switch (arm64CounterModel(ctx.sw)) {
    case '6.4+':
      return timer === 'vtimer' ? vm.voffset : vm.poffset;
    case 'pre-6.4':
      return timer === 'vtimer' ? vm.voffset : 0n;
    case 'v8':
      // host_offset: the vtimer's follows the physical offset (update_ptimer_cntpoff), so
      // guest CNTVCT = host − TIMER_OFFSET − PHYS_OFFSET as the series documents
      return timer === 'vtimer' ? u64(vm.voffset + vcpu.physOffset) : vcpu.physOffset;
  }
}

/** The timer's counter as the guest sees it: kvm_phys_timer_read() − timer_get_offset() */
export function timerCounter(ctx: Arm64Ctx, vm: Arm64Vm, vcpu: Arm64Vcpu, timer: TimerId): bigint {
  return u64(kvmPhysTimerRead(ctx) - timerGetOffset(ctx, vm, vcpu, timer));
}

/**
 * arch/arm64/kvm/arch_timer.c: update_vtimer_cntvoff() (pre-6.4 and v8): set CNTVOFF on every vCPU and on the one being created
 * (not yet in the list), so there is only ever one value. Under v8 this is the guest-visible
 * offset (timer_set_guest_offset); each vCPU keeps its physical offset on top of it.
 */
export function updateVtimerCntvoff(vm: Arm64Vm, cntvoff: bigint): void {
  vm.voffset = u64(cntvoff);
}

/**
 * arch/arm64/kvm/arch_timer.c: update_ptimer_cntpoff() (v8): broadcast the physical offset to the vCPUs that exist now; the
 * vtimer's hardware offset moves with it, which timerGetOffset() derives.
 */
export function updatePtimerCntpoff(vm: Arm64Vm, cntpoff: bigint): void {
  for (const v of vm.vcpus) v.physOffset = u64(cntpoff);
}

/**
 * arch/arm64/kvm/arch_timer.c: kvm_timer_vcpu_init() / timer_context_init(): point the new vCPU's timers at the VM's offsets
 * and, unless userspace took control of them, restart the VM's virtual counter at 0. This runs in
 * kvm_arch_vcpu_create(), before the generic code refuses a duplicate id.
 */
export function kvmTimerVcpuInit(ctx: Arm64Ctx, vm: Arm64Vm, vcpu: Arm64Vcpu): void {
  const now = kvmPhysTimerRead(ctx);
  switch (arm64CounterModel(ctx.sw)) {
    case '6.4+':
      // The offsets are VM-wide storage: this write moves every vCPU's counters, not just the new one's.
      if (!vm.counterOffsetUsed) {
        vm.voffset = now;
        vm.poffset = 0n;
      }
      break;
    case 'pre-6.4':
    case 'v8':
      updateVtimerCntvoff(vm, now);
      // timer_set_offset(ptimer, 0): only this vCPU's. Under v8 a vCPU created after a
      // PHYS_OFFSET write therefore starts without it (the broadcast reached existing vCPUs only).
      vcpu.physOffset = 0n;
      break;
  }
}

/** arch/arm64/kvm/arch_timer.c: read_timer_ctl(): ISTATUS is reported whenever the deadline has passed, whatever ENABLE says */
function readTimerCtl(ctx: Arm64Ctx, vm: Arm64Vm, vcpu: Arm64Vcpu, timer: TimerId): bigint {
  const ctl = timer === 'vtimer' ? vcpu.cntvCtl : vcpu.cntpCtl;
  const cval = timer === 'vtimer' ? vcpu.cntvCval : vcpu.cntpCval;
  // kvm_timer_compute_delta() == 0: the timer's counter has reached CVAL
  return timerCounter(ctx, vm, vcpu, timer) >= cval ? ctl | ARCH_TIMER_CTRL_IT_STAT : ctl;
}

/** arch/arm64/kvm/arch_timer.c: kvm_arm_timer_set_reg(): a KVM_SET_ONE_REG of a timer register */
export function kvmArmTimerSetReg(ctx: Arm64Ctx, vm: Arm64Vm, vcpu: Arm64Vcpu, reg: TimerReg, value: bigint): void {
  const model = arm64CounterModel(ctx.sw);
  switch (reg.reg) {
    case 'ctl': {
      // cnt_ctl is a u32, and ISTATUS is not state
      const ctl = value & U32_MASK & ~ARCH_TIMER_CTRL_IT_STAT;
      if (reg.timer === 'vtimer') vcpu.cntvCtl = ctl;
      else vcpu.cntpCtl = ctl;
      return;
    }
    case 'cval':
      if (reg.timer === 'vtimer') vcpu.cntvCval = value;
      else vcpu.cntpCval = value;
      return;
    case 'cnt': {
      // Each write samples the host counter itself, so V and P restored one after the other
      // end up apart by the time between the two writes.
      const offset = u64(kvmPhysTimerRead(ctx) - value);
      if (model === '6.4+') {
        // Once KVM_ARM_SET_COUNTER_OFFSET was used the write is accepted and dropped (api.rst:
        // "No error will be returned, but the resulting offset will not be applied").
        if (vm.counterOffsetUsed) {
          ctx.trace?.push({ tp: 'clockledger_arm_counter_write_ignored', vcpu_id: vcpu.id, timer: reg.timer, value });
          return;
        }
        if (reg.timer === 'vtimer') vm.voffset = offset;
        else vm.poffset = offset;
      } else {
        // pre-6.4 and v8: update_vtimer_cntvoff(vcpu, phys − value). Under v8 that sets the
        // guest-visible CNTVOFF, so with a physical offset P the counter then reads value − P
        // (the series' "mixed use ... unpredictable guest counter value" warning).
        updateVtimerCntvoff(vm, offset);
      }
      return;
    }
    case 'offset':
      // v8: KVM_REG_ARM_TIMER_OFFSET → update_vtimer_cntvoff(vcpu, value), relative to the guest's physical counter
      updateVtimerCntvoff(vm, value);
      return;
  }
}

/** arch/arm64/kvm/arch_timer.c: kvm_arm_timer_get_reg(): a KVM_GET_ONE_REG of a timer register */
export function kvmArmTimerGetReg(ctx: Arm64Ctx, vm: Arm64Vm, vcpu: Arm64Vcpu, reg: TimerReg): bigint {
  switch (reg.reg) {
    case 'ctl':
      return readTimerCtl(ctx, vm, vcpu, reg.timer);
    case 'cval':
      return reg.timer === 'vtimer' ? vcpu.cntvCval : vcpu.cntpCval;
    case 'cnt':
      return timerCounter(ctx, vm, vcpu, reg.timer);
    case 'offset':
      // v8 timer_get_guest_offset(): the guest-visible CNTVOFF_EL2
      return vm.voffset;
  }
}

/**
 * arch/arm64/kvm/arch_timer.c: kvm_vm_ioctl_set_counter_offset() (6.4+): one offset for both counters of every vCPU, present
 * and future, from now on. kvm_trylock_all_vcpus() fails while any vCPU ioctl holds its vCPU's
 * mutex, which in this model means a vCPU in KVM_RUN.
 */
export function kvmVmIoctlSetCounterOffset(vm: Arm64Vm, offset: { counterOffset: bigint; reserved: bigint }): 0 | 'EINVAL' | 'EBUSY' {
  if (offset.reserved !== 0n) return 'EINVAL';
  if (vm.vcpus.some((v) => v.running)) return 'EBUSY';
  vm.counterOffsetUsed = true;
  vm.voffset = u64(offset.counterOffset);
  vm.poffset = u64(offset.counterOffset);
  return 0;
}

/**
 * arch/arm64/kvm/arch_timer.c: timer_set_traps() (6.4+, VHE) / ptimer_emulation_required() (v8): a guest CNTPCT_EL0 read traps
 * when the physical offset is not 0 and there is no CNTPOFF to apply it in hardware. Before 6.4
 * the guest physical counter is the host's, never offset, so never trapped.
 */
export function physCounterTrapped(ctx: Arm64Ctx, vm: Arm64Vm, vcpu: Arm64Vcpu): boolean {
  if (arm64CounterModel(ctx.sw) === 'pre-6.4') return false;
  return !ctx.caps.ecv && timerGetOffset(ctx, vm, vcpu, 'ptimer') !== 0n;
}

/** The guest's CNTVCT_EL0: CNTVOFF_EL2 is applied by hardware, so it never traps (no broken-CNTVOFF erratum modelled). */
export function guestReadCntvct(ctx: Arm64Ctx, vm: Arm64Vm, vcpu: Arm64Vcpu): bigint {
  return timerCounter(ctx, vm, vcpu, 'vtimer');
}

/**
 * The guest's CNTPCT_EL0. A trapped read is emulated in the hyp fast path (6.4: "Fast-track
 * CNTPCT_EL0 trap handling"; v8: __hyp_handle_counter()) as host − offset: the same value, at
 * the cost of an exit, which is counted on the vCPU.
 */
export function guestReadCntpct(ctx: Arm64Ctx, vm: Arm64Vm, vcpu: Arm64Vcpu): { value: bigint; trapped: boolean } {
  const trapped = physCounterTrapped(ctx, vm, vcpu);
  if (trapped) vcpu.trappedPhysReads++;
  return { value: timerCounter(ctx, vm, vcpu, 'ptimer'), trapped };
}

/** arch/arm64/kvm/arch_timer.c: kvm_arm_timer_has_attr() */
export function kvmArmTimerHasAttr(ctx: Arm64Ctx, attr: number): 0 | 'ENXIO' {
  if (attr === KVM_ARM_VCPU_TIMER_IRQ_VTIMER || attr === KVM_ARM_VCPU_TIMER_IRQ_PTIMER) return 0;
  // v8 8/8 dropped the ECV requirement: the attribute exists on every host (emulated without ECV)
  if (attr === ATTRS.KVM_ARM_VCPU_TIMER_PHYS_OFFSET && arm64CounterModel(ctx.sw) === 'v8') return 0;
  return 'ENXIO';
}

/** arch/arm64/kvm/arch_timer.c: kvm_arm_timer_get_attr() */
export function kvmArmTimerGetAttr(ctx: Arm64Ctx, vcpu: Arm64Vcpu, attr: number): bigint | 'ENXIO' {
  if (attr === KVM_ARM_VCPU_TIMER_IRQ_VTIMER) return DEFAULT_VTIMER_IRQ;
  if (attr === KVM_ARM_VCPU_TIMER_IRQ_PTIMER) return DEFAULT_PTIMER_IRQ;
  // v8 kvm_arm_timer_get_attr_offset(): this vCPU's ptimer host_offset
  if (attr === ATTRS.KVM_ARM_VCPU_TIMER_PHYS_OFFSET && arm64CounterModel(ctx.sw) === 'v8') return vcpu.physOffset;
  return 'ENXIO';
}

/** arch/arm64/kvm/arch_timer.c: kvm_arm_timer_set_attr() */
export function kvmArmTimerSetAttr(ctx: Arm64Ctx, vm: Arm64Vm, attr: number, value: bigint): 0 | 'EINVAL' | 'ENXIO' {
  if (arm64CounterModel(ctx.sw) === 'v8') {
    if (attr === ATTRS.KVM_ARM_VCPU_TIMER_PHYS_OFFSET) {
      updatePtimerCntpoff(vm, value);
      return 0;
    }
    // kvm_arm_timer_set_attr_irq(): the IRQ numbers need an in-kernel GIC, which this model has not
    if (attr === KVM_ARM_VCPU_TIMER_IRQ_VTIMER || attr === KVM_ARM_VCPU_TIMER_IRQ_PTIMER) return 'EINVAL';
    return 'ENXIO';
  }
  // Upstream checks irqchip_in_kernel() before looking at the attribute: no GIC, EINVAL for all.
  return 'EINVAL';
}
